"""Deterministic generator of SYNTHETIC residents for a demo town.

Every value produced here is invented: names are drawn at random from lists of
common Japanese names, addresses from a list of generic 町名 with random
丁目・番・号, and identifiers (個人番号, 住民票コード, telephone numbers) are
random digits. No real person's data is used or reproduced on purpose. A random
number or name may coincide with a real one by chance, so these values must
never be used to contact, identify or look up anyone, and must never be loaded
into a production tenant.

The output imitates the shape of a Japanese town in the 2020s so that demos and
benchmarks exercise realistic data: household types (single elderly, single
young, couples, couples with one to three children, single parents,
three-generation homes, …), about 29 % of residents aged 65 and over and about
11 % under 15, spouses sharing a family name, parents 20–45 years older than
their children, 続柄 as written on a 住民票, and given names that fit the
person's birth year.

The generator is pure: it returns plain data (no database access) and depends
only on its arguments. The same arguments always give the same output; it
uses its own ``random.Random(seed)`` and never the global random state or the
current date (``today`` is an argument).

Modules: :mod:`.records` (what it returns), :mod:`.names`, :mod:`.places`,
:mod:`.shapes` (household shapes and their weights), :mod:`.town` (the
generator). The public names are this package's.
"""

from shared_gov.domains.residents.seed.names import (
    FAMILY_NAMES,
    FEMALE_GIVEN_NAMES,
    MALE_GIVEN_NAMES,
)
from shared_gov.domains.residents.seed.places import TOWN_DISTRICTS
from shared_gov.domains.residents.seed.records import (
    RELATIONSHIPS,
    SyntheticHousehold,
    SyntheticPerson,
)
from shared_gov.domains.residents.seed.town import generate_town

__all__ = [
    "FAMILY_NAMES",
    "FEMALE_GIVEN_NAMES",
    "MALE_GIVEN_NAMES",
    "RELATIONSHIPS",
    "TOWN_DISTRICTS",
    "SyntheticHousehold",
    "SyntheticPerson",
    "generate_town",
]
