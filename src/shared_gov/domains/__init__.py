"""Business domains. Each has models, schemas, repository, service, controllers."""
