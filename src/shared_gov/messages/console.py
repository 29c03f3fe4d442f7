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
