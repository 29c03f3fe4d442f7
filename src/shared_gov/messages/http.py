"""Problem titles by status, and the HTTP layer's own sentences (``sg.http.*``)."""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM, Message

_t = PLATFORM.text
_template = PLATFORM.template

# RFC 9457 §3.1.3: a title does not change between occurrences, except by language.
TITLE_BAD_REQUEST = _t("http.title.400", en="Bad request", ja="不正なリクエストです")
TITLE_UNAUTHORIZED = _t("http.title.401", en="Unauthorized", ja="認証されていません")
TITLE_FORBIDDEN = _t("http.title.403", en="Forbidden", ja="許可されていません")
TITLE_NOT_FOUND = _t("http.title.404", en="Not found", ja="見つかりません")
TITLE_METHOD_NOT_ALLOWED = _t(
    "http.title.405", en="Method not allowed", ja="このメソッドは使えません"
)
TITLE_NOT_ACCEPTABLE = _t("http.title.406", en="Not acceptable", ja="応答できる形式がありません")
TITLE_CONFLICT = _t("http.title.409", en="Conflict", ja="現在の状態と矛盾します")
TITLE_PRECONDITION_FAILED = _t(
    "http.title.412", en="Precondition failed", ja="前提条件が満たされていません"
)
TITLE_TOO_LARGE = _t("http.title.413", en="Request entity too large", ja="リクエストが大きすぎます")
TITLE_UNSUPPORTED_MEDIA_TYPE = _t(
    "http.title.415", en="Unsupported media type", ja="このメディアタイプは扱えません"
)
TITLE_UNPROCESSABLE = _t(
    "http.title.422", en="Unprocessable content", ja="入力内容に誤りがあります"
)
TITLE_PRECONDITION_REQUIRED = _t(
    "http.title.428", en="Precondition required", ja="前提条件の指定が必要です"
)
TITLE_TOO_MANY_REQUESTS = _t("http.title.429", en="Too many requests", ja="リクエストが多すぎます")
TITLE_INTERNAL = _t("http.title.500", en="Internal error", ja="内部エラー")
TITLE_UNAVAILABLE = _t("http.title.503", en="Service unavailable", ja="サービスを利用できません")

TITLES: dict[int, Message] = {
    400: TITLE_BAD_REQUEST,
    401: TITLE_UNAUTHORIZED,
    403: TITLE_FORBIDDEN,
    404: TITLE_NOT_FOUND,
    405: TITLE_METHOD_NOT_ALLOWED,
    406: TITLE_NOT_ACCEPTABLE,
    409: TITLE_CONFLICT,
    412: TITLE_PRECONDITION_FAILED,
    413: TITLE_TOO_LARGE,
    415: TITLE_UNSUPPORTED_MEDIA_TYPE,
    422: TITLE_UNPROCESSABLE,
    428: TITLE_PRECONDITION_REQUIRED,
    429: TITLE_TOO_MANY_REQUESTS,
    500: TITLE_INTERNAL,
    503: TITLE_UNAVAILABLE,
}

# Default details of each kind of error.
BAD_REQUEST = _t("http.bad_request", en="bad request", ja="不正なリクエストです")
FORBIDDEN = _t("http.forbidden", en="forbidden", ja="許可されていません")
NO_SUCH_RESOURCE = _t("http.not_found", en="no such resource", ja="該当するものはありません")
CONFLICT = _t("http.conflict", en="conflict", ja="現在の状態と矛盾します")
PRECONDITION_FAILED = _t(
    "http.precondition_failed", en="precondition failed", ja="前提条件が満たされていません"
)
PRECONDITION_REQUIRED = _t(
    "http.precondition_required", en="precondition required", ja="前提条件の指定が必要です"
)
INVALID_REQUEST = _t("http.invalid", en="invalid request", ja="リクエストの内容に誤りがあります")
BODY_HAS_INVALID_FIELDS = _t(
    "http.invalid_body",
    en="the request body has invalid fields",
    ja="リクエスト本文に誤りのある項目があります",
)
INVALID_PARAMETERS = _template(
    "http.invalid_parameters",
    en="invalid {kind}: {names}",
    ja="{kind}に誤りがあります: {names}",
)
PATH_PARAMETER = _t("http.kind.path", en="path parameter", ja="パスパラメータ")
PATH_PARAMETERS = _t("http.kind.paths", en="path parameters", ja="パスパラメータ")
QUERY_PARAMETER = _t("http.kind.query", en="query parameter", ja="クエリパラメータ")
QUERY_PARAMETERS = _t("http.kind.queries", en="query parameters", ja="クエリパラメータ")
HEADER = _t("http.kind.header", en="header", ja="ヘッダー")
HEADERS = _t("http.kind.headers", en="headers", ja="ヘッダー")
SERVICE_UNAVAILABLE = _t(
    "http.unavailable", en="service unavailable", ja="サービスを利用できません"
)
INTERNAL_ERROR = _t("http.internal", en="internal error", ja="内部エラーが発生しました")

NOT_JSON = _t(
    "http.not_json",
    en="the request body is not valid JSON",
    ja="リクエスト本文が正しいJSONではありません",
)
NOT_JSON_OR_SHAPE = _t(
    "http.not_json_or_shape",
    en="the request body is not valid JSON or not the expected shape",
    ja="リクエスト本文が正しいJSONでないか、期待する形ではありません",
)
INVALID_INPUT = _t("http.invalid_input", en="invalid input", ja="入力に誤りがあります")
MISSING_PARAMETER = _template(
    "http.missing_parameter",
    en="missing required {kind}: {name}",
    ja="必須の{kind}がありません: {name}",
)
METHOD_NOT_ALLOWED = _t(
    "http.method_not_allowed", en="method not allowed", ja="このメソッドは使えません"
)
TOO_LARGE = _t(
    "http.too_large", en="the request body is too large", ja="リクエスト本文が大きすぎます"
)
NOT_PROCESSED = _t(
    "http.not_processed",
    en="the request could not be processed",
    ja="リクエストを処理できませんでした",
)
NESTED_TOO_DEEPLY = _t(
    "http.nested_too_deeply",
    en="the request body is nested too deeply",
    ja="リクエスト本文の入れ子が深すぎます",
)
DUPLICATE_KEY = _t(
    "http.duplicate_key",
    en="occurs more than once in its object",
    ja="同じオブジェクトの中で複数回指定されています",
)
UNKNOWN_QUERY_PARAMETER = _template(
    "http.unknown_query",
    en="unknown query parameter{names}; this endpoint takes {takes}",
    ja="このエンドポイントが受け付けないクエリパラメータです{names}（受け付けるもの: {takes}）",
)
UNKNOWN_QUERY_PARAMETERS = _template(
    "http.unknown_queries",
    en="unknown query parameters{names}; this endpoint takes {takes}",
    ja="このエンドポイントが受け付けないクエリパラメータです{names}（受け付けるもの: {takes}）",
)
NONE = _t("http.none", en="none", ja="なし")
DB_TIMEOUT = _t(
    "http.db_timeout",
    en="the database did not answer in time; retry",
    ja="データベースが時間内に応答しませんでした。再試行してください",
)
DB_UNREACHABLE = _t(
    "http.db_unreachable",
    en="the database is unreachable; retry",
    ja="データベースに接続できません。再試行してください",
)
DB_BUSY = _t(
    "http.db_busy",
    en="the database is busy or unreachable; retry",
    ja="データベースが混み合っているか接続できません。再試行してください",
)
DB_GONE_DURING_COMMIT = _t(
    "http.db_gone_during_commit",
    en="the database went away during commit",
    ja="確定（コミット）中にデータベースとの接続が切れました",
)
KEY_PROVIDER_UNAVAILABLE = _t(
    "http.key_provider_unavailable",
    en="the key provider is unavailable; retry",
    ja="鍵管理装置を利用できません。再試行してください",
)
SHUTTING_DOWN = _t(
    "http.shutting_down",
    en="the service is shutting down; retry",
    ja="サービスが停止処理中です。再試行してください",
)
