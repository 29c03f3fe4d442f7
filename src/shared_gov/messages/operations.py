"""The operators' jobs that answer with problems: keys and towns (``sg.operations.*``)."""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

BITS_BETWEEN = _template(
    "operations.bits_between",
    en="must be between {low} and {high}",
    ja="{low}以上{high}以下にしてください",
)
NO_SUCH_TOWN_OR_KEY = _t(
    "operations.no_such_town_or_key",
    en="no such town or key",
    ja="該当する自治体または鍵はありません",
)
NOT_A_ROTATABLE_INDEX = _template(
    "operations.not_a_rotatable_index",
    en="not a rotatable blind index (one of {names})",
    ja="鍵を更新できるブラインドインデックスではありません（{names} のいずれか）",
)
NOT_AN_ENCRYPTED_COLUMN = _t(
    "operations.not_an_encrypted_column",
    en="not an encrypted column",
    ja="暗号化された列ではありません",
)
CANNOT_RESEAL_YET = _template(
    "operations.cannot_reseal_yet",
    en="town {town} cannot rewrite {table} yet: run `shared-gov tenants migrate` first",
    ja=(
        "自治体 {town} はまだ {table} を書き換えられません。"
        "先に `shared-gov tenants migrate` を実行してください"
    ),
)
MANIFEST_NOT_TOML = _template(
    "operations.manifest_not_toml",
    en="{file}: not valid TOML ({why})",
    ja="{file}: TOML として読めません（{why}）",
)
MANIFEST_UNREADABLE = _template(
    "operations.manifest_unreadable",
    en="cannot read the manifest ({why})",
    ja="マニフェストを読めません（{why}）",
)
