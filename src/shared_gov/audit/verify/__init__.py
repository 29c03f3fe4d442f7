"""Re-verify a town's whole audit log from the events up (``shared-gov audit verify``).

Nothing stored is taken on trust except the town's public key (from the key
provider) and, optionally, a checkpoint the auditor saved earlier:

1. sequence numbers run 0, 1, 2, … without a gap, and every leaf is
   recomputed from its event (canonical encoding, :mod:`.tlog`) and compared
   with the stored leaf hash;
2. the tree is rebuilt from the leaves; every stored subtree node must equal
   the rebuilt one (they serve the proofs);
3. every checkpoint's Ed25519 signature must verify under the town's key, and
   its root must equal the rebuilt tree's root at its size;
4. a saved checkpoint must be signed by the same key and the log must extend
   it (its complete subtrees, or at least its root, match the rebuilt tree);
5. no event older than the sealer's position may be left unsealed (one
   inserted behind the sealer's back);
6. no event id occurs twice (a copy of a real event, MAC and all), and no
   event is dated more than five minutes after the check (:mod:`.events`).

Each incarnation of a town code is a log of its own (migration c0012):
:func:`verify_tenant` checks one, :func:`verify_town` every one of the town's
incarnations (or the one asked for), each against its own key: the provider's
for the town as it is now, the key recorded at offboarding
(``audit.incarnation_keys``) for one that ended.

Problems carry the first leaf position they implicate. Per-event problems
are exact; a root that stops matching a signed head is located between the
last head that still matched and that head (heads are about a second apart);
a rewritten log that matches nothing signed by the town is located by the
saved checkpoint's complete subtrees.

Everything is read in one REPEATABLE READ snapshot, so a sealer appending
meanwhile never produces false alarms. Step 1 (decoding and hashing every
event) is most of the work and parallel by nature: with ``workers`` it runs
in that many processes, each on a range of sequence numbers in the same
exported snapshot, while this process rebuilds the tree.

Modules: :mod:`.report` (problems and the report), :mod:`.leaves` (step 1,
per event, in this process or in workers), :mod:`.tree` (steps 2-4, the
rebuilt tree against nodes, heads and the saved checkpoint), :mod:`.events`
(copies, future dates), :mod:`.chains`
(MACs, writers' chains, links to the town's tables), :mod:`.log` (one town's
run, its incarnations and their keys). This package's names are the public
ones (``shared-gov audit verify``, the tests and the benchmarks use them).
"""

from shared_gov.audit.verify.chains import check_chains, check_links
from shared_gov.audit.verify.log import incarnation_keys, live_mac_key, verify_tenant, verify_town
from shared_gov.audit.verify.report import Problem, VerifyReport

__all__ = [
    "Problem",
    "VerifyReport",
    "check_chains",
    "check_links",
    "incarnation_keys",
    "live_mac_key",
    "verify_tenant",
    "verify_town",
]
