"""The web console's labels, headings and notices (``sg.console.*``).

One catalogue for the console's words, beside the API's sentences: a label
on a page and the reason in a problem come from the same place, so the
console says what the API says (``docs/console.md``).
"""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

TITLE = _t("console.title", en="shared-gov console", ja="自治体クラウド 業務画面")
SKIP = _t("console.skip", en="Skip to the main content", ja="本文へ移動")
LANGUAGE = _t("console.language", en="Language", ja="表示言語")
SIGN_IN = _t("console.sign_in", en="Sign in", ja="サインイン")
SIGN_OUT = _t("console.sign_out", en="Sign out", ja="サインアウト")
SIGNED_OUT = _t("console.signed_out", en="You have signed out.", ja="サインアウトしました。")
EXPIRED = _t(
    "console.expired",
    en="Your session ended after a period without use. Please sign in again.",
    ja="一定時間操作がなかったため、セッションを終了しました。もう一度サインインしてください。",
)
TOWN_CODE = _t(
    "console.town_code", en="Local government code (6 digits)", ja="地方公共団体コード（6桁）"
)
SIGN_IN_INTRO = _t(
    "console.sign_in_intro",
    en="Sign in with your town's identity provider.",
    ja="所属団体の認証基盤でサインインします。",
)
DEMO_TOWNS = _t("console.demo_towns", en="Demo towns", ja="デモ団体")
DEV_ISSUER = _t(
    "console.dev_issuer",
    en="Development sign-in (built-in issuer): choose a member of staff. Never in production.",
    ja="開発用サインイン（内蔵の発行者）: 職員を選んでください。本番環境では使えません。",
)
STAFF_MEMBER = _t("console.staff_member", en="Member of staff", ja="職員")
CONTINUE = _t("console.continue", en="Continue", ja="続ける")
SIGNED_IN_AS = _t("console.signed_in_as", en="Signed in as", ja="サインイン中")
HOME = _t("console.home", en="Home", ja="ホーム")
NOTHING_HERE = _t(
    "console.nothing_here",
    en="Your roles open no page of this console yet.",
    ja="あなたの役割で開ける画面はまだありません。",
)
AUDIT_LOG = _t("console.audit_log", en="Access log (audit)", ja="アクセスログ（監査）")
SEARCH = _t("console.search", en="Search", ja="検索")
FILTERS = _t("console.filters", en="Filters", ja="検索条件")
ACTOR = _t("console.actor", en="Staff id", ja="職員ID")
ACTOR_TENANT = _t("console.actor_tenant", en="Staff's town (code)", ja="職員の所属団体（コード）")
DEPARTMENT = _t("console.department", en="Department", ja="所属")
SUBJECT = _t("console.subject", en="Resident id", ja="住民ID")
PURPOSE = _t("console.purpose", en="Purpose of use", ja="利用目的")
ACTION = _t("console.action", en="Action", ja="操作")
RESOURCE_TYPE = _t("console.resource_type", en="Resource type", ja="対象の種類")
OUTCOME = _t("console.outcome", en="Outcome", ja="結果")
ANY = _t("console.any", en="(any)", ja="（指定なし）")
INDIVIDUAL_NUMBER = _t(
    "console.individual_number", en="Individual number read", ja="個人番号の利用"
)
YES = _t("console.yes", en="yes", ja="あり")
NO = _t("console.no", en="no", ja="なし")
FROM = _t("console.from", en="From (inclusive)", ja="開始（この日時を含む）")
TO = _t("console.to", en="To (exclusive)", ja="終了（この日時を含まない）")
ORDER = _t("console.order", en="Order", ja="並び順")
OLDEST_FIRST = _t("console.oldest_first", en="Oldest first", ja="古い順")
NEWEST_FIRST = _t("console.newest_first", en="Newest first", ja="新しい順")
PAGE_SIZE = _t("console.page_size", en="Events per page", ja="1ページの件数")
RESULTS = _t("console.results", en="Events", ja="イベント")
COUNT = _template("console.count", en="{n} events on this page", ja="このページに {n} 件")
NO_EVENTS = _t("console.no_events", en="No event matches.", ja="該当するイベントはありません。")
NEXT_PAGE = _t("console.next_page", en="Next page", ja="次のページ")
EXPORT_CSV = _t("console.export_csv", en="Export as CSV", ja="CSV で書き出す")
EXPORT_JSONL = _t("console.export_jsonl", en="Export as JSON Lines", ja="JSON Lines で書き出す")
OCCURRED_AT = _t("console.occurred_at", en="When", ja="日時")
DETAILS = _t("console.details", en="Details", ja="詳細")
EVENT = _t("console.event", en="Event", ja="イベント")
REASON = _t("console.reason", en="Reason", ja="理由")
FIELDS = _t("console.fields", en="Fields", ja="項目")
ROWS = _t("console.rows", en="Rows returned", ja="返した件数")
POLICIES = _t("console.policies", en="Deciding policies", ja="判断したポリシー")
AUTH_STRENGTH = _t("console.auth_strength", en="Authentication", ja="認証")
CLIENT = _t("console.client", en="Client address", ja="接続元")
REQUEST_ID = _t("console.request_id", en="Request id", ja="リクエストID")
PROOF = _t("console.proof", en="Inclusion proof", ja="包含証明")
PROOF_OK = _template(
    "console.proof_ok",
    en="Verified: leaf {seq} is in the signed tree of {size} events.",
    ja="検証済み: 署名された {size} 件の木の {seq} 番目の葉として含まれています。",
)
PROOF_BAD = _t(
    "console.proof_bad",
    en="The proof does NOT verify against the signed checkpoint.",
    ja="署名済みチェックポイントに対して証明が成り立ちません。",
)
NOT_SEALED = _t(
    "console.not_sealed",
    en="Not yet sealed in a checkpoint (sealing runs every few seconds).",
    ja="まだチェックポイントに封印されていません（封印は数秒ごとに行われます）。",
)
CHECKPOINT = _t("console.checkpoint", en="Latest checkpoint", ja="最新のチェックポイント")
TREE_SIZE = _t("console.tree_size", en="Tree size", ja="木の大きさ")
ROOT_HASH = _t("console.root_hash", en="Root hash", ja="ルートハッシュ")
SIGNED_AT = _t("console.signed_at", en="Signed at", ja="署名日時")
SIGNATURE = _t("console.signature", en="Signature", ja="署名")
VALID = _t("console.valid", en="valid", ja="有効")
INVALID = _t("console.invalid", en="INVALID", ja="無効")
LEAF_HASH = _t("console.leaf_hash", en="Leaf hash", ja="葉ハッシュ")
PATH = _t("console.path", en="Audit path", ja="監査パス")
VERIFY = _t("console.verify", en="Verify the log now", ja="今すぐログを検証")
VERIFY_INTRO = _t(
    "console.verify_intro",
    en="Re-reads every event of the town, rebuilds the tree and checks it against "
    "every signed checkpoint (as shared-gov audit verify does).",
    ja="団体のすべてのイベントを読み直し、木を再構築して、署名済みのすべての"
    "チェックポイントと照合します（shared-gov audit verify と同じ処理です）。",
)
VERIFY_OK = _template(
    "console.verify_ok",
    en="The log verifies: {leaves} events, {checkpoints} checkpoints, verified up to {size}.",
    ja="ログは正しく検証されました: イベント {leaves} 件、チェックポイント {checkpoints} 件、"
    "{size} 件まで検証済み。",
)
VERIFY_BAD = _template(
    "console.verify_bad",
    en="The log does NOT verify: {problems} problems.",
    ja="ログの検証に失敗しました: 問題 {problems} 件。",
)
NO_CHECKPOINT = _t(
    "console.no_checkpoint",
    en="No checkpoint has been signed yet.",
    ja="署名済みのチェックポイントはまだありません。",
)
ERROR = _t("console.error", en="Something is not right", ja="問題が発生しました")
NOT_FOUND = _t("console.not_found", en="Not found", ja="見つかりません")
BACK = _t("console.back", en="Back", ja="戻る")
CSRF_REFUSED = _t(
    "console.csrf_refused",
    en="The form was refused: it did not come from this console (reload the page and try again).",
    ja="このフォームは受け付けられません: この画面から送信されたものではありません"
    "（再読み込みしてやり直してください）。",
)
SIGN_IN_FAILED = _t(
    "console.sign_in_failed",
    en="Sign-in did not complete. Please start again.",
    ja="サインインを完了できませんでした。もう一度やり直してください。",
)
NO_IDP = _t(
    "console.no_idp",
    en="This town has no identity provider the console can use.",
    ja="この団体には、画面から使える認証基盤が設定されていません。",
)
SIX_DIGITS = _t(
    "console.six_digits", en="a 6-digit local government code", ja="6桁の地方公共団体コードです"
)
BAD_AUTHORIZATION = _t(
    "console.bad_authorization",
    en="not an authorization request this issuer accepts (code flow with S256 PKCE)",
    ja="この発行者が受け付ける認可リクエストではありません（S256 の PKCE による認可コードフロー）",
)
INVALID_GRANT = _t(
    "console.invalid_grant",
    en="invalid_grant: the code is unknown, used, expired or not bound to this verifier",
    ja="invalid_grant: コードが不明、使用済み、期限切れ、またはこの検証子に結び付いていません",
)
UNSUPPORTED_GRANT = _t(
    "console.unsupported_grant",
    en="unsupported_grant_type: only authorization_code",
    ja="unsupported_grant_type: authorization_code のみ受け付けます",
)
OUTCOMES = {
    "allowed": _t("console.outcome.allowed", en="allowed", ja="許可"),
    "denied": _t("console.outcome.denied", en="denied", ja="拒否"),
    "not_found": _t("console.outcome.not_found", en="not found", ja="該当なし"),
    "error": _t("console.outcome.error", en="error", ja="エラー"),
}

# --- town admins' pages and the disclosure desk (web/admin.py, issuer.py,
# agreements.py; domains/residents/console.py) ---------------------------------

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
NO_DEPARTMENT = _t(
    "console.no_department", en="(none: the token's department)", ja="（指定なし: トークンの所属）"
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
KINDS = {
    "bilateral": _t("console.kind.bilateral", en="bilateral", ja="二団体間"),
    "standing_move": _t("console.kind.standing_move", en="standing (moves)", ja="転出入の常設協定"),
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
PERIOD = _t("console.period", en="Period", ja="対象期間")
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
