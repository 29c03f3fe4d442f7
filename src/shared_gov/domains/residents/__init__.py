"""住民記録: residents, households, moves (異動) and history."""
