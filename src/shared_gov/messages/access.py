"""Why access was denied or a field withheld, purposes, permissions, agreements (``sg.access.*``).

The denial reasons are :func:`shared_gov.policy.reasons.explain`'s sentences
(Cedar gives none for a default deny): staff read them in a 403's
``reason`` and next to each withheld field, admins in ``…/explain``. A
field is a :class:`~shared_gov.messages.core.FieldName`, so Japanese names
it by its label too.
"""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

# --- denial reasons (policy/reasons.py) ---------------------------------------------

OPERATORS_NEVER = _t(
    "access.operators_never",
    en="operators never read or change residents",
    ja="運用者は住民の記録を読むことも変更することもできません",
)
AUDITORS_READ_LOG = _t(
    "access.auditors_read_log",
    en="auditors read the audit log, not personal fields",
    ja="監査担当者が読めるのは監査ログで、個人情報の項目は読めません",
)
OTHER_TOWN = _t(
    "access.other_town",
    en="the record belongs to another town",
    ja="この記録は他の自治体のものです",
)
EVENTS_NEED_ROLE = _t(
    "access.events_role",
    en="reading the town's events needs the integration or admin role",
    ja="自治体のイベントを読むには integration または admin のロールが必要です",
)
OPERATORS_MAY_NOT_ADMINISTER = _template(
    "access.operators_administer",
    en="operators may not administer a town's {area}",
    ja="運用者は自治体の {area} を管理できません",
)
ADMIN_ROLE_NEEDED = _t(
    "access.admin_role",
    en="administering the town needs the admin role",
    ja="自治体の管理には admin ロールが必要です",
)
AUDITOR_ROLE_NEEDED = _t(
    "access.auditor_role",
    en="reading the audit log needs the auditor role",
    ja="監査ログを読むには auditor ロールが必要です",
)
ONLY_STAFF = _t(
    "access.only_staff",
    en="only staff act on resident records (the admin role grants no personal data)",
    ja="住民の記録を扱えるのは staff ロールの職員だけです（admin ロールでは個人情報を扱えません）",
)
NO_PURPOSE = _t(
    "access.no_purpose",
    en="no purpose of use was stated",
    ja="利用目的が示されていません",
)
PURPOSE_NOT_GRANTED = _template(
    "access.purpose_not_granted",
    en="purpose {purpose} is not granted to this staff member (department {department})",
    ja="利用目的 {purpose} はこの職員（所属 {department}）に認められていません",
)
NO_DEPARTMENT = _t("access.no_department", en="none", ja="なし")
PURPOSE_DOES_NOT_COVER = _template(
    "access.purpose_does_not_cover",
    en="purpose {purpose} does not cover {what}",
    ja="利用目的 {purpose} は {what} を対象としていません",
)
NOT_LISTED_USE = _template(
    "access.not_listed_use",
    en="purpose {purpose} is not a listed use of the individual number",
    ja="利用目的 {purpose} は番号法で個人番号の利用が認められた事務ではありません",
)
MFA_REQUIRED = _t(
    "access.mfa_required",
    en="two-factor authentication required",
    ja="二要素認証が必要です",
)
ONLY_SHIMIN_PROTECTS = _t(
    "access.only_shimin_protects",
    en="only 市民課 sets support measures",
    ja="支援措置を設定できるのは市民課だけです",
)
DENIED_BY_POLICIES = _template(
    "access.denied_by_policies",
    en="denied by policy {policies}",
    ja="ポリシー {policies} により拒否されました",
)
NO_POLICY_PERMITS = _t(
    "access.no_policy_permits",
    en="no policy permits this",
    ja="これを許可するポリシーがありません",
)
DENIED_BY_POLICY = _t(
    "access.denied_by_policy",
    en="denied by policy",
    ja="ポリシーにより拒否されました",
)
DENIED = _t("access.denied", en="denied", ja="拒否されました")
NO_FIELD_READABLE = _t(
    "access.no_field_readable",
    en="no field may be read",
    ja="読める項目がありません",
)
WITHHELD = _t("access.withheld", en="withheld", ja="表示を控えています")
WITHHELD_SUPPORT_MEASURES = _t(
    "access.withheld_support_measures",
    en="withheld under support measures (支援措置)",
    ja="支援措置により表示を控えています",
)

# Under an agreement (recorded in the audit log; the caller sees a plain 404).
AGREEMENT_STATUS = _template(
    "access.agreement_status",
    en="agreement {agreement} is {status}",
    ja="協定 {agreement} は {status} の状態です",
)
AGREEMENT_OTHER_PROVIDER = _t(
    "access.agreement_other_provider",
    en="the agreement's provider is another town",
    ja="協定の提供元は別の自治体です",
)
AGREEMENT_OTHER_RECIPIENT = _t(
    "access.agreement_other_recipient",
    en="the agreement's recipient is another town",
    ja="協定の提供先は別の自治体です",
)
AGREEMENT_NOT_YET = _t(
    "access.agreement_not_yet",
    en="the agreement is not yet in force",
    ja="協定はまだ発効していません",
)
AGREEMENT_EXPIRED = _t(
    "access.agreement_expired",
    en="the agreement has expired",
    ja="協定の有効期間が終わっています",
)
AGREEMENT_DEPARTMENT = _template(
    "access.agreement_department",
    en="the agreement does not cover department {department}",
    ja="協定は部署 {department} を対象としていません",
)
AGREEMENT_PURPOSE = _template(
    "access.agreement_purpose",
    en="the agreement does not cover purpose {purpose}",
    ja="協定は利用目的 {purpose} を対象としていません",
)
AGREEMENT_WHAT = _template(
    "access.agreement_what",
    en="the agreement does not cover {what}",
    ja="協定は {what} を対象としていません",
)
STANDING_MOVE_MOVED_OUT = _t(
    "access.standing_move_moved_out",
    en="the standing move agreement covers only residents who registered a move-out",
    ja="転出の常設協定の対象は転出届を出した住民だけです",
)
STANDING_MOVE_DESTINATION = _t(
    "access.standing_move_destination",
    en="the standing move agreement covers only the new town of a pending move-out",
    ja="転出の常設協定の対象は転出先の自治体だけです",
)
ONLY_STAFF_SHORT = _t(
    "access.only_staff_short",
    en="only staff act on resident records",
    ja="住民の記録を扱えるのは staff ロールの職員だけです",
)
PURPOSE_NOT_GRANTED_SHORT = _template(
    "access.purpose_not_granted_short",
    en="purpose {purpose} is not granted to this staff member",
    ja="利用目的 {purpose} はこの職員に認められていません",
)
NO_POLICY_PERMITS_UNDER_AGREEMENT = _t(
    "access.no_policy_permits_agreement",
    en="no policy permits this under the agreement",
    ja="協定のもとでこれを許可するポリシーがありません",
)

# --- purposes and the X-Purpose header -----------------------------------------------

PURPOSE_REQUIRED = _t(
    "access.purpose_required",
    en="the X-Purpose header is required for personal data",
    ja="個人情報を扱うには X-Purpose ヘッダーで利用目的を示してください",
)
PURPOSE_UNKNOWN_HEADER = _t(
    "access.purpose_unknown_header",
    en="X-Purpose names no known purpose (see policies/purposes.toml)",
    ja="X-Purpose の利用目的が登録されていません（GET /api/v1/purposes を参照してください）",
)
UNKNOWN_PURPOSE = _t(
    "access.unknown_purpose", en="unknown purpose", ja="登録されていない利用目的です"
)
NOT_A_POLICY_FIELD = _t(
    "access.not_a_policy_field",
    en="not a field decided by policy",
    ja="ポリシーで判断する項目ではありません",
)

# --- the town's administration ----------------------------------------------------------

NAMES_NOBODY = _t(
    "access.names_nobody",
    en="names nobody (only blanks)",
    ja="空白だけで、誰も指していません",
)
NO_PERMISSIONS_RECORDED = _t(
    "access.no_permissions_recorded",
    en="no permissions are recorded for this staff member",
    ja="この職員の権限は登録されていません",
)
NO_SUCH_DEPARTMENT = _t(
    "access.no_such_department",
    en="no such department in this town",
    ja="この自治体にそのような部署はありません",
)
NOBODY_CHANGES_OWN_DEPARTMENT = _t(
    "access.own_department",
    en="nobody changes the purposes of their own department; another admin of the town must",
    ja="自分の部署の利用目的は変更できません。自治体の別の管理者が変更してください",
)
NOBODY_CHANGES_OWN_PERMISSIONS = _t(
    "access.own_permissions",
    en="nobody changes their own permissions or suspension; another admin of the town must",
    ja="自分の権限や利用停止は変更できません。自治体の別の管理者が変更してください",
)

# --- sharing agreements ------------------------------------------------------------------

NO_SUCH_AGREEMENT = _t(
    "access.no_such_agreement", en="no such agreement", ja="該当する協定はありません"
)
PARTY_OFFBOARDING = _t(
    "access.party_offboarding",
    en="a party to the agreement is being offboarded",
    ja="協定の当事者の自治体が利用終了の手続き中です",
)
ONLY_RECIPIENT_ACCEPTS = _t(
    "access.only_recipient_accepts",
    en="only the recipient town's admin accepts an agreement",
    ja="協定を受諾できるのは提供先の自治体の管理者だけです",
)
AGREEMENT_NOT_PROPOSED = _template(
    "access.agreement_not_proposed",
    en="the agreement is {status}, not proposed",
    ja="協定は {status} の状態で、提案中ではありません",
)
AGREEMENT_ALREADY_REVOKED = _t(
    "access.agreement_already_revoked",
    en="the agreement is already revoked",
    ja="協定はすでに取り消されています",
)
ONLY_PROVIDER_PROPOSES = _t(
    "access.only_provider_proposes",
    en="only the providing town's admin proposes an agreement",
    ja="協定を提案できるのは提供元の自治体の管理者だけです",
)
NOT_A_TOWN_CODE = _t(
    "access.not_a_town_code",
    en="not a valid local government code",
    ja="正しい地方公共団体コードではありません",
)
NOT_WITH_ITSELF = _t(
    "access.not_with_itself",
    en="a town cannot make an agreement with itself",
    ja="自治体は自分自身と協定を結べません",
)
NO_SUCH_TOWN = _t(
    "access.no_such_town",
    en="no such town on this deployment",
    ja="この環境にそのような自治体はありません",
)
NO_SUCH_DEPARTMENT_THERE = _t(
    "access.no_such_department_there",
    en="no such department in that town",
    ja="その自治体にそのような部署はありません",
)
NO_SUCH_PURPOSE = _t(
    "access.no_such_purpose", en="no such purpose", ja="そのような利用目的はありません"
)
NO_SUCH_FIELD = _t(
    "access.no_such_field", en="no such personal field", ja="そのような個人情報の項目はありません"
)
READ_OR_SEARCH = _t(
    "access.read_or_search", en="must be read or search", ja="read か search を指定してください"
)
NAME_AT_LEAST_ONE = _t(
    "access.at_least_one", en="must name at least one", ja="少なくとも一つ指定してください"
)
NAMES_ONE_TWICE = _t(
    "access.names_twice", en="names one twice", ja="同じものが二度指定されています"
)
NEEDS_OFFSET = _t(
    "access.needs_offset",
    en="must include a time zone offset",
    ja="タイムゾーン（例: +09:00）を含めてください",
)
OUT_OF_RANGE = _t("access.out_of_range", en="out of range", ja="範囲外です")
UNTIL_AFTER_FROM = _t(
    "access.until_after_from",
    en="must be after valid_from",
    ja="valid_from より後にしてください",
)
NOT_BLANK = _t("access.not_blank", en="must not be blank", ja="空にはできません")
AGREEMENT_ID_REQUIRED = _t(
    "access.agreement_id",
    en="X-Agreement must be an agreement id",
    ja="X-Agreement には協定のIDを指定してください",
)
