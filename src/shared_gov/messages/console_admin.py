"""The console's labels for the town admins' pages and the disclosure desk
(``sg.console.*``, the same catalogue as :mod:`.console`).

Kept apart so that neither module passes 500 lines; :mod:`.console` imports
every name here, so pages and templates read them all as ``L``
(``web/admin.py``, ``issuer.py``, ``agreements.py``;
``domains/residents/console.py``).
"""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

ADMIN = _t("console.admin", en="Town administration", ja="団体の管理")
DEPARTMENTS = _t("console.departments", en="Departments and purposes", ja="部署と利用目的")
STAFF_PERMISSIONS = _t(
    "console.staff_permissions", en="Staff permissions and suspensions", ja="職員の権限と利用停止"
)
EXPLAIN = _t(
    "console.explain",
    en="Why can't this person see this field?",
    ja="この職員がこの項目を見られない理由",
)
IDP = _t("console.idp", en="Identity provider", ja="認証基盤（IdP）")
AGREEMENTS = _t("console.agreements", en="Sharing agreements", ja="団体間の提供協定")
DISCLOSURE = _t(
    "console.disclosure", en="Access reports (disclosure desk)", ja="アクセス記録の開示（窓口）"
)
CODE = _t("console.code", en="Code", ja="コード")
NAME = _t("console.name", en="Name", ja="名称")
IN_USE = _t("console.in_use", en="In use", ja="使用中")
NOT_IN_USE = _t("console.not_in_use", en="Not in use", ja="使用停止")
PURPOSES = _t("console.purposes", en="Purposes of use", ja="利用目的")
SAVE = _t("console.save", en="Save", ja="保存")
CHANGE = _t("console.change", en="Change", ja="変更")
NEW_DEPARTMENT = _t("console.new_department", en="Add a department", ja="部署を追加")
DEPARTMENT_CODE = _t(
    "console.department_code",
    en="Department code (lower-case letters, digits, _)",
    ja="部署コード（英小文字・数字・_）",
)
DEPARTMENT_ACTIVE = _t(
    "console.department_active", en="The department is in use", ja="この部署を使用する"
)
DEPARTMENT_SAVED = _template(
    "console.department_saved",
    en="Department {department} saved.",
    ja="部署 {department} を保存しました。",
)
OWN_RULE = _t(
    "console.own_rule",
    en="Nobody changes their own permissions, suspension or their own department's purposes: "
    "another admin does (the API's rule).",
    ja="自分自身の権限・利用停止・所属部署の利用目的は変更できません。"
    "別の管理者が行います（API と同じ規則）。",
)
STATUS = _t("console.status", en="Status", ja="状態")
SUSPENDED = _t("console.suspended", en="Suspended", ja="利用停止中")
ACTIVE_STAFF = _t("console.active_staff", en="Active", ja="利用可")
SUSPEND = _t("console.suspend", en="Suspend", ja="利用停止にする")
LIFT = _t("console.lift", en="Lift the suspension", ja="利用停止を解除")
EDIT = _t("console.edit", en="Edit", ja="編集")
FORGET = _t("console.forget", en="Forget own permissions", ja="個人の権限を削除")
NOTE = _t(
    "console.note",
    en="Note (not recorded in the audit log)",
    ja="備考（監査ログには記録されません）",
)
NO_DEPARTMENT_PIN = _t(
    "console.no_department_pin",
    en="(none: the token's department)",
    ja="（指定なし: トークンの所属）",
)
SET_PERMISSIONS = _t(
    "console.set_permissions", en="Set a person's permissions", ja="職員の権限を設定"
)
SUSPEND_PERSON = _t(
    "console.suspend_person", en="Suspend this person", ja="この職員を利用停止にする"
)
OWN_PURPOSES = _t(
    "console.own_purposes",
    en="Purposes granted to the person (besides their department's)",
    ja="個人に付与する利用目的（所属部署の分に加えて）",
)
STAFF_ON_RECORD = _t(
    "console.staff_on_record", en="Per-person permissions on record", ja="登録済みの個人権限"
)
NO_STAFF = _t(
    "console.no_staff",
    en="No per-person permission is recorded.",
    ja="個人の権限は登録されていません。",
)
ACTIONS_COLUMN = _t("console.actions_column", en="Actions", ja="操作")
STAFF_SAVED = _template(
    "console.staff_saved",
    en="The permissions of {staff} are saved.",
    ja="{staff} の権限を保存しました。",
)
STAFF_SUSPENDED = _template(
    "console.staff_suspended", en="{staff} is suspended.", ja="{staff} を利用停止にしました。"
)
STAFF_LIFTED = _template(
    "console.staff_lifted",
    en="{staff}'s suspension is lifted.",
    ja="{staff} の利用停止を解除しました。",
)
STAFF_FORGOTTEN = _template(
    "console.staff_forgotten",
    en="The own permissions of {staff} are forgotten.",
    ja="{staff} の個人の権限を削除しました。",
)
EXPLAIN_INTRO = _t(
    "console.explain_intro",
    en="Cedar's decision for each field, as the API's explain endpoint gives it: "
    "the person's purposes (their department's and their own) and the one condition that failed.",
    ja="API の説明エンドポイントと同じく、項目ごとの Cedar の判断を表示します: "
    "その職員の利用目的（所属部署の分と個人の分）と、満たされなかった条件。",
)
DEPARTMENT_OPTIONAL = _t(
    "console.department_optional",
    en="Department (blank: the one on record)",
    ja="所属（空欄: 登録されている所属）",
)
MFA = _t("console.mfa", en="Signed in with two factors", ja="二要素認証でサインインしている")
SUPPORT_MEASURE = _t(
    "console.support_measure",
    en="The resident is under a support measure (支援措置)",
    ja="対象の住民が支援措置の対象",
)
EXPLAIN_BUTTON = _t("console.explain_button", en="Explain", ja="理由を表示")
FIELD = _t("console.field", en="Field", ja="項目")
DECISION = _t("console.decision", en="Decision", ja="判断")
MAY_SEE = _t("console.may_see", en="may see", ja="閲覧できる")
MAY_NOT_SEE = _t("console.may_not_see", en="may not see", ja="閲覧できない")
GRANTED_PURPOSES = _t(
    "console.granted_purposes", en="Purposes granted", ja="付与されている利用目的"
)
NONE = _t("console.none", en="none", ja="なし")
ISSUER_URL = _t("console.issuer_url", en="Issuer URL", ja="発行者 URL")
AUDIENCE = _t("console.audience", en="Audience", ja="受け手（audience）")
JWKS_URI = _t("console.jwks_uri", en="JWKS URL", ja="公開鍵（JWKS）の URL")
INLINE_KEYS = _t(
    "console.inline_keys",
    en="Inline public keys (JWKS JSON; instead of the URL)",
    ja="公開鍵（JWKS の JSON。URL の代わり）",
)
KEY_IDS = _t("console.key_ids", en="Inline key ids", ja="登録されている鍵の ID")
ALGORITHMS = _t("console.algorithms", en="Signature algorithms", ja="署名アルゴリズム")
STAFF_CLAIM = _t("console.staff_claim", en="Claim of the staff id", ja="職員 ID のクレーム")
DEPARTMENT_CLAIM = _t("console.department_claim", en="Claim of the department", ja="所属のクレーム")
ROLES_CLAIM = _t("console.roles_claim", en="Claim of the roles", ja="役割のクレーム")
NO_ISSUER_YET = _t(
    "console.no_issuer_yet",
    en="This town has no identity provider of its own registered.",
    ja="この団体には独自の認証基盤が登録されていません。",
)
IN_EFFECT = _t("console.in_effect", en="In effect", ja="現在の設定")
PENDING = _t("console.pending", en="Pending change", ja="承認待ちの変更")
NO_PENDING = _t("console.no_pending", en="No change is pending.", ja="承認待ちの変更はありません。")
PROPOSE_CHANGE = _t("console.propose_change", en="Propose new settings", ja="新しい設定を提案")
PROPOSE_REMOVAL = _t(
    "console.propose_removal",
    en="Propose removing the identity provider",
    ja="認証基盤の削除を提案",
)
APPROVE = _t("console.approve", en="Approve", ja="承認する")
WITHDRAW_OR_REJECT = _t("console.withdraw_or_reject", en="Withdraw / reject", ja="取り下げ・却下")
DIGEST = _t("console.digest", en="Digest (SHA-256)", ja="ダイジェスト（SHA-256）")
PROPOSED_BY = _t("console.proposed_by", en="Proposed by", ja="提案者")
PROPOSED_AT = _t("console.proposed_at", en="Proposed at", ja="提案日時")
EXPIRES_AT = _t("console.expires_at", en="Expires", ja="期限")
CHANGE_KIND = _t("console.change_kind", en="Change", ja="変更の種類")
CHANGE_KINDS = {
    "replace": _t("console.change_kind.replace", en="replace the settings", ja="設定の変更"),
    "delete": _t("console.change_kind.delete", en="remove the provider", ja="認証基盤の削除"),
}
PROPOSED_SETTINGS = _t("console.proposed_settings", en="Proposed", ja="提案された設定")
FOUR_EYES = _t(
    "console.four_eyes",
    en="Four eyes: a change takes effect only when another admin of the town approves it "
    "(comparing the digest with what they reviewed); nobody approves their own.",
    ja="4つの目の原則: 変更は団体の別の管理者が（確認したダイジェストと照合して）承認したときに"
    "初めて有効になります。自分の提案は承認できません。",
)
ISSUER_PROPOSED = _t(
    "console.issuer_proposed",
    en="The change is proposed: another admin must approve it.",
    ja="変更を提案しました。別の管理者の承認が必要です。",
)
ISSUER_REGISTERED = _t(
    "console.issuer_registered",
    en="The identity provider is registered.",
    ja="認証基盤を登録しました。",
)
ISSUER_APPROVED = _t(
    "console.issuer_approved",
    en="Approved: the change is in effect.",
    ja="承認しました。変更は有効になりました。",
)
PROPOSAL_ENDED = _template(
    "console.proposal_ended",
    en="The proposal is now {status}.",
    ja="提案は「{status}」になりました。",
)
PROVIDER = _t("console.provider", en="Providing town", ja="提供元の団体")
RECIPIENT = _t("console.recipient", en="Receiving town", ja="提供先の団体")
RECIPIENT_DEPARTMENTS = _t(
    "console.recipient_departments",
    en="Receiving departments (codes, separated by commas)",
    ja="提供先の部署（コード。カンマ区切り）",
)
LEGAL_BASIS = _t("console.legal_basis", en="Legal basis", ja="根拠法令")
VALID_FROM = _t("console.valid_from", en="Valid from", ja="有効期間の開始日")
VALID_UNTIL = _t(
    "console.valid_until", en="Valid until (inclusive)", ja="有効期間の終了日（この日を含む）"
)
IN_FORCE = _t("console.in_force", en="In force", ja="発効中")
VERSIONS = _t("console.versions", en="Versions", ja="版の履歴")
VERSION = _t("console.version", en="Version", ja="版")
CHANGED_BY = _t("console.changed_by", en="Changed by", ja="変更者")
CHANGED_AT = _t("console.changed_at", en="Changed at", ja="変更日時")
PROPOSE = _t("console.propose", en="Propose", ja="提案する")
ACCEPT = _t("console.accept", en="Accept", ja="受諾する")
REVOKE = _t("console.revoke", en="Revoke", ja="廃止する")
NO_AGREEMENTS = _t("console.no_agreements", en="No agreement.", ja="協定はありません。")
AGREEMENT = _t("console.agreement", en="Agreement", ja="協定")
PROPOSE_AGREEMENT = _t(
    "console.propose_agreement",
    en="Propose an agreement (this town provides)",
    ja="協定を提案（この団体が提供元）",
)
AGREEMENT_STEPS = _t(
    "console.agreement_steps",
    en="The providing town's admin proposes, the receiving town's admin accepts, "
    "either town's admin revokes; each step is in both towns' audit logs.",
    ja="提供元の管理者が提案し、提供先の管理者が受諾し、どちらの管理者も廃止できます。"
    "各手続は両団体の監査ログに記録されます。",
)
AGREEMENT_DONE = {
    "propose": _t(
        "console.agreement_proposed",
        en="Proposed: the receiving town's admin must accept it.",
        ja="協定を提案しました。提供先の団体の管理者による受諾が必要です。",
    ),
    "accept": _t("console.agreement_accepted", en="Accepted.", ja="協定を受諾しました。"),
    "revoke": _t("console.agreement_revoked", en="Revoked.", ja="協定を廃止しました。"),
}
AGREEMENT_STATUSES = {
    "proposed": _t("console.agreement.proposed", en="proposed", ja="提案中"),
    "active": _t("console.agreement.active", en="active", ja="有効"),
    "revoked": _t("console.agreement.revoked", en="revoked", ja="廃止"),
}
AGREEMENT_KINDS = {
    "bilateral": _t("console.agreement_kind.bilateral", en="bilateral", ja="二団体間"),
    "standing_move": _t(
        "console.agreement_kind.standing_move", en="standing (moves)", ja="転出入の常設協定"
    ),
}
AGREEMENT_ACTIONS = {
    "read": _t("console.agreement_action.read", en="read", ja="閲覧"),
    "search": _t("console.agreement_action.search", en="search", ja="検索"),
}
DISCLOSURE_INTRO = _t(
    "console.disclosure_intro",
    en="After checking the resident's identity, enter their resident id. It is sent in the form, "
    "never in the address, and the report is recorded in the town's log as the API's is.",
    ja="本人確認のうえ、住民IDを入力してください。住民IDはフォームで送信され、アドレスには残りません。"
    "開示資料の作成は API と同じく団体の監査ログに記録されます。",
)
PERIOD_FROM = _t("console.period_from", en="From (optional)", ja="期間の開始日（任意）")
PERIOD_TO = _t(
    "console.period_to", en="To, inclusive (optional)", ja="期間の終了日（任意・この日を含む）"
)
SHOW_REPORT = _t("console.show_report", en="Show the report", ja="開示資料を表示")
REPORT_TITLE = _t(
    "console.report_title",
    en="Record of accesses to your resident record",
    ja="住民記録の利用状況（アクセス記録）の開示",
)
REPORT_INTRO = _t(
    "console.report_intro",
    en="Under the Act on the Protection of Personal Information, we disclose who "
    "(which town and department) used your resident record, when and for what purpose.",
    ja="個人情報の保護に関する法律に基づき、あなたの住民記録を、いつ、どの団体・部署が、"
    "どの目的で利用したかを次のとおり開示します。",
)
ISSUED_ON = _t("console.issued_on", en="Date of issue", ja="交付日")
ISSUED_BY = _t("console.issued_by", en="Issued by", ja="交付者")
RESIDENT_ID = _t("console.resident_id", en="Resident id", ja="住民ID")
REPORT_PERIOD = _t("console.report_period", en="Period", ja="対象期間")
WHOLE_PERIOD = _t("console.whole_period", en="all recorded", ja="記録のあるすべての期間")
TOWN = _t("console.town", en="Town", ja="団体")
ANOTHER_TOWN = _t(
    "console.another_town", en="another town (not disclosed)", ja="他の団体（非開示）"
)
PLATFORM_OPERATION = _t("console.platform_operation", en="the platform", ja="システム運用")
NO_ACCESSES = _t("console.no_accesses", en="No access is recorded.", ja="記録はありません。")
ENTRY_COUNT = _t("console.entry_count", en="Entries", ja="件数")
ACCESS_COUNT = _template("console.access_count", en="{n} entries", ja="{n} 件")
WITHHELD_UNTIL = _template(
    "console.withheld_until",
    en="Some entries are withheld until {until}.",
    ja="一部の記録は {until} まで開示を保留しています。",
)
PRINT = _t("console.print", en="Print (A4)", ja="印刷（A4）")
PRINT_HINT = _t(
    "console.print_hint",
    en="Printed, the page is an A4 document without the console's navigation.",
    ja="印刷すると、画面の操作部分を除いた A4 の文書になります。",
)
ANOTHER_RESIDENT = _t("console.another_resident", en="Another resident", ja="別の住民を検索")

__all__ = [
    "ACCEPT",
    "ACCESS_COUNT",
    "ACTIONS_COLUMN",
    "ACTIVE_STAFF",
    "ADMIN",
    "AGREEMENT",
    "AGREEMENTS",
    "AGREEMENT_ACTIONS",
    "AGREEMENT_DONE",
    "AGREEMENT_KINDS",
    "AGREEMENT_STATUSES",
    "AGREEMENT_STEPS",
    "ALGORITHMS",
    "ANOTHER_RESIDENT",
    "ANOTHER_TOWN",
    "APPROVE",
    "AUDIENCE",
    "CHANGE",
    "CHANGED_AT",
    "CHANGED_BY",
    "CHANGE_KIND",
    "CHANGE_KINDS",
    "CODE",
    "DECISION",
    "DEPARTMENTS",
    "DEPARTMENT_ACTIVE",
    "DEPARTMENT_CLAIM",
    "DEPARTMENT_CODE",
    "DEPARTMENT_OPTIONAL",
    "DEPARTMENT_SAVED",
    "DIGEST",
    "DISCLOSURE",
    "DISCLOSURE_INTRO",
    "EDIT",
    "ENTRY_COUNT",
    "EXPIRES_AT",
    "EXPLAIN",
    "EXPLAIN_BUTTON",
    "EXPLAIN_INTRO",
    "FIELD",
    "FORGET",
    "FOUR_EYES",
    "GRANTED_PURPOSES",
    "IDP",
    "INLINE_KEYS",
    "IN_EFFECT",
    "IN_FORCE",
    "IN_USE",
    "ISSUED_BY",
    "ISSUED_ON",
    "ISSUER_APPROVED",
    "ISSUER_PROPOSED",
    "ISSUER_REGISTERED",
    "ISSUER_URL",
    "JWKS_URI",
    "KEY_IDS",
    "LEGAL_BASIS",
    "LIFT",
    "MAY_NOT_SEE",
    "MAY_SEE",
    "MFA",
    "NAME",
    "NEW_DEPARTMENT",
    "NONE",
    "NOTE",
    "NOT_IN_USE",
    "NO_ACCESSES",
    "NO_AGREEMENTS",
    "NO_DEPARTMENT_PIN",
    "NO_ISSUER_YET",
    "NO_PENDING",
    "NO_STAFF",
    "OWN_PURPOSES",
    "OWN_RULE",
    "PENDING",
    "PERIOD_FROM",
    "PERIOD_TO",
    "PLATFORM_OPERATION",
    "PRINT",
    "PRINT_HINT",
    "PROPOSAL_ENDED",
    "PROPOSE",
    "PROPOSED_AT",
    "PROPOSED_BY",
    "PROPOSED_SETTINGS",
    "PROPOSE_AGREEMENT",
    "PROPOSE_CHANGE",
    "PROPOSE_REMOVAL",
    "PROVIDER",
    "PURPOSES",
    "RECIPIENT",
    "RECIPIENT_DEPARTMENTS",
    "REPORT_INTRO",
    "REPORT_PERIOD",
    "REPORT_TITLE",
    "RESIDENT_ID",
    "REVOKE",
    "ROLES_CLAIM",
    "SAVE",
    "SET_PERMISSIONS",
    "SHOW_REPORT",
    "STAFF_CLAIM",
    "STAFF_FORGOTTEN",
    "STAFF_LIFTED",
    "STAFF_ON_RECORD",
    "STAFF_PERMISSIONS",
    "STAFF_SAVED",
    "STAFF_SUSPENDED",
    "STATUS",
    "SUPPORT_MEASURE",
    "SUSPEND",
    "SUSPENDED",
    "SUSPEND_PERSON",
    "TOWN",
    "VALID_FROM",
    "VALID_UNTIL",
    "VERSION",
    "VERSIONS",
    "WHOLE_PERIOD",
    "WITHDRAW_OR_REJECT",
    "WITHHELD_UNTIL",
]
