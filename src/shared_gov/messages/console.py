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
IDP_UNREACHABLE = _t(
    "console.idp_unreachable",
    en="The town's identity provider did not answer as expected; try again later.",
    ja="団体の認証基盤から正しい応答がありません。しばらくしてからもう一度お試しください。",
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

# --- The auditor's analyses and charts, the browser's proof check (issue 19) ---
ANALYSES = _t("console.analyses", en="Analyses of the access log", ja="アクセスログの分析")
ANALYSES_INTRO = _t(
    "console.analyses_intro",
    en="Access after hours and on holidays, bulk access, repeated denials, failed sign-ins "
    "and individual-number reads in a period (the last 7 days unless you choose one), "
    "as GET …/audit/analyses reports them.",
    ja="期間内（指定がなければ直近7日間）の時間外・休日のアクセス、大量アクセス、繰り返しの拒否、"
    "認証の失敗、個人番号の利用を示します（GET …/audit/analyses と同じ内容です）。",
)
RUN_ANALYSES = _t("console.run_analyses", en="Analyse", ja="分析する")
PERIOD = _t("console.period", en="Period", ja="期間")
OFFICE_START = _t("console.office_start", en="Office opens (HH:MM)", ja="開庁時刻（HH:MM）")
OFFICE_END = _t("console.office_end", en="Office closes (HH:MM)", ja="閉庁時刻（HH:MM）")
WEEKENDS_CLOSED = _t("console.weekends_closed", en="Closed on weekends", ja="土日は閉庁")
BULK_THRESHOLD = _t(
    "console.bulk_threshold",
    en="Bulk: more residents than this in an hour",
    ja="大量アクセス: 1時間にこの人数を超える住民",
)
DENIAL_THRESHOLD = _t(
    "console.denial_threshold", en="Repeated denials: at least", ja="繰り返しの拒否: この回数以上"
)
WHOLE_NUMBER = _t(
    "console.whole_number", en="a whole number, 1 or more", ja="1以上の整数を入力してください"
)
SETTINGS_USED = _t("console.settings_used", en="Settings", ja="分析の条件")
FINDINGS = _t("console.findings", en="Findings", ja="検出結果")
TRUNCATED = _t(
    "console.truncated",
    en="Some analysis found more than it lists: choose a shorter period.",
    ja="一部の分析で表示しきれない件数が見つかりました。期間を短くしてください。",
)
NONE_FOUND = _t("console.none_found", en="Nothing found.", ja="該当はありません。")
AFTER_HOURS = _t(
    "console.after_hours", en="After hours, weekends and holidays", ja="時間外・休日のアクセス"
)
BULK_ACCESS = _t("console.bulk_access", en="Bulk access", ja="大量アクセス")
REPEATED_DENIALS = _t("console.repeated_denials", en="Repeated denials", ja="繰り返しの拒否")
FAILED_LOGINS = _t(
    "console.failed_logins", en="Failed sign-ins by address", ja="接続元ごとの認証の失敗"
)
NUMBER_READS = _t("console.number_reads", en="Individual-number reads", ja="個人番号の利用")
KINDS = {
    "holiday": _t("console.kind.holiday", en="holiday", ja="休日"),
    "weekend": _t("console.kind.weekend", en="weekend", ja="土日"),
    "after_hours": _t("console.kind.after_hours", en="after hours", ja="時間外"),
}
DAY = _t("console.day", en="Day", ja="日付")
HOUR = _t("console.hour", en="Hour (JST)", ja="時台（日本時間）")
KIND = _t("console.kind", en="Kind", ja="種別")
EVENTS = _t("console.events", en="Events", ja="件数")
FIRST = _t("console.first", en="First", ja="最初")
LAST = _t("console.last", en="Last", ja="最後")
RESIDENTS = _t("console.residents", en="Residents", ja="住民数")
WINDOW = _t("console.window", en="Hour from", ja="1時間の開始")
DENIALS = _t("console.denials", en="Denials", ja="拒否の回数")
FAILURES = _t("console.failures", en="Failures", ja="失敗の回数")
READS = _t("console.reads", en="Reads", ja="利用の回数")
REASONS = _t("console.reasons", en="Reasons", ja="理由")
ACTIONS = _t("console.actions", en="Actions", ja="操作")
SHOW_EVENTS = _t("console.show_events", en="Show the events", ja="イベントを見る")
ACTIVITY = _t("console.activity", en="Accesses in the period", ja="期間中のアクセス")
PER_DAY = _t("console.per_day", en="Accesses per day (JST)", ja="日ごとのアクセス（日本時間）")
PER_HOUR = _t(
    "console.per_hour",
    en="Accesses per hour of the day (JST)",
    ja="時間帯ごとのアクセス（日本時間）",
)
PER_DEPARTMENT = _t("console.per_department", en="Accesses per department", ja="所属ごとのアクセス")
ALLOWED = _t("console.allowed", en="allowed", ja="許可")
REFUSED = _t(
    "console.refused", en="refused (denied, not found, error)", ja="拒否・該当なし・エラー"
)
TOTAL = _t("console.total", en="Total", ja="合計")
AS_TABLE = _t("console.as_table", en="The values as a table", ja="数値を表で見る")
NO_DEPARTMENT = _t("console.no_department", en="(none)", ja="（なし）")
CHART_SUMMARY = _template(
    "console.chart_summary",
    en="{title}: {total} events; the most, {peak}, at {label}. Every value is in the table below.",
    ja="{title}: 合計 {total} 件、最多は {label} の {peak} 件。すべての値は下の表にあります。",
)
CHART_EMPTY = _template(
    "console.chart_empty", en="{title}: no events.", ja="{title}: イベントはありません。"
)
BROWSER_PROOF = _t(
    "console.browser_proof", en="Check in your browser", ja="お使いのブラウザでの確認"
)
BROWSER_PROOF_INTRO = _t(
    "console.browser_proof_intro",
    en="Your browser hashes the event's canonical form into its leaf, recomputes the audit "
    "path with its own SHA-256 (WebCrypto) up to the root the checkpoint signs, and checks "
    "the checkpoint's Ed25519 signature against the public key shown below. That key came "
    "from this same server: the check shows that the proof and the signature agree with it, "
    "not that it is your town's key. Compare it with the town's public key you hold "
    "(obtained elsewhere, never from this page). The event's MAC is not checked here "
    "(shared-gov audit verify checks it, with the town's audit key).",
    ja="お使いのブラウザが、イベントの正規形から葉ハッシュを求め、自身の SHA-256（WebCrypto）で"
    "監査パスをチェックポイントの署名されたルートまで計算し直し、チェックポイントの Ed25519 署名を"
    "下に示す公開鍵で確かめます。この公開鍵は同じサーバーから送られたものです。確認できるのは、"
    "証明と署名がこの鍵に合っていることであり、この鍵が町の鍵であることではありません。"
    "お手元の町の公開鍵（このページ以外から入手したもの）と照合してください。"
    "イベントの MAC はここでは確認しません（町の監査鍵を使う shared-gov audit verify が"
    "確認します）。",
)
BROWSER_KEY = _t(
    "console.browser_key",
    en="Public key the signature is checked against (sent by this server; compare it with "
    "the town's key you hold):",
    ja="署名の確認に使う公開鍵（このサーバーから送られたもの。お手元の町の公開鍵と照合してください）:",
)
BROWSER_CHECKING = _t("console.browser_checking", en="Checking…", ja="確認しています…")
BROWSER_OK = _t(
    "console.browser_ok",
    en="Verified in your browser: the path leads to the signed root.",
    ja="お使いのブラウザで確認しました: 監査パスは署名されたルートに一致します。",
)
BROWSER_BAD = _t(
    "console.browser_bad",
    en="Your browser could NOT verify the proof: the path does not lead to the signed root.",
    ja="お使いのブラウザでは証明を確認できません: 監査パスが署名されたルートに一致しません。",
)
BROWSER_SIG_OK = _t(
    "console.browser_sig_ok",
    en="The checkpoint's signature is valid under the public key shown "
    "(Ed25519, checked in your browser).",
    ja="チェックポイントの署名は、示した公開鍵で有効です（Ed25519、お使いのブラウザで確認）。",
)
BROWSER_SIG_BAD = _t(
    "console.browser_sig_bad",
    en="The checkpoint's signature is NOT valid.",
    ja="チェックポイントの署名が有効ではありません。",
)
BROWSER_SIG_UNSUPPORTED = _t(
    "console.browser_sig_unsupported",
    en="This browser cannot check Ed25519 signatures; only the path was checked.",
    ja="このブラウザは Ed25519 署名を確認できません。監査パスのみ確認しました。",
)
BROWSER_UNSUPPORTED = _t(
    "console.browser_unsupported",
    en="This browser offers no WebCrypto here (it needs HTTPS): the check did not run.",
    ja="このブラウザではここで WebCrypto が使えません（HTTPS が必要です）。"
    "確認は行われていません。",
)
BROWSER_AGAIN = _t("console.browser_again", en="Check again in the browser", ja="ブラウザで再確認")


# The town admins' and the disclosure desk's labels (beside: this module would
# pass 500 lines); the pages read them all as ``L``.
from shared_gov.messages.console_admin import *  # noqa: E402, F403 - one catalogue for the pages
