"""Why a bearer token was refused (401), and the sign-in states after it (``sg.token.*``).

A 401 says which check failed, so that a newcomer whose token comes from the
wrong place (another port, another data directory, yesterday) is not left to
guess. Nothing of the token is quoted: only our own expectations (the
built-in issuer's URL and audience, which its discovery document publishes
anyway, and the longest lifetime accepted).
"""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

TOKEN_REQUIRED = _t(
    "token.required",
    en="a valid bearer token is required",
    ja="有効なベアラートークンが必要です",
)
MISSING = _t(
    "token.missing",
    en="a bearer token is required: send Authorization: Bearer <token>",
    ja="ベアラートークンが必要です。Authorization: Bearer <トークン> を送ってください",
)
NOT_BEARER = _t(
    "token.not_bearer",
    en="the Authorization header must use the Bearer scheme",
    ja="Authorization ヘッダーは Bearer 方式で指定してください",
)
MALFORMED = _t(
    "token.malformed",
    en="the token is not a well-formed signed JWT",
    ja="トークンが正しい形式の署名付きJWTではありません",
)
TOO_LARGE = _t(
    "token.too_large",
    en="the token is larger than 8 KB",
    ja="トークンが8KBを超えています",
)
UNKNOWN_ISSUER = _template(
    "token.unknown_issuer",
    en=(
        "the token's issuer (iss) is not this server's ({issuer}) nor an issuer a town "
        "registered; a token of the built-in issuer must be minted with this server's "
        "SHARED_GOV_ISSUER and data directory"
    ),
    ja=(
        "トークンの発行者（iss）がこのサーバー（{issuer}）でも、自治体が登録した発行者でもありません。"
        "組み込み発行者のトークンは、このサーバーと同じ SHARED_GOV_ISSUER とデータディレクトリで"
        "発行してください"
    ),
)
BUILTIN_REFUSED = _t(
    "token.builtin_refused",
    en=(
        "the built-in issuer's tokens act for no town outside development; "
        "sign in with the town's own identity provider"
    ),
    ja="開発環境以外では組み込み発行者のトークンは使えません。自治体の認証基盤でサインインしてください",
)
ALGORITHM = _t(
    "token.algorithm",
    en="the token is signed with an algorithm its issuer does not use",
    ja="トークンの署名アルゴリズムが発行者の指定と異なります",
)
UNKNOWN_KEY = _t(
    "token.unknown_key",
    en="the token's key id (kid) names no key its issuer publishes",
    ja="トークンの鍵ID（kid）に当たる鍵を発行者が公開していません",
)
KEYS_UNAVAILABLE = _t(
    "token.keys_unavailable",
    en="the issuer's keys could not be fetched; retry later",
    ja="発行者の公開鍵を取得できませんでした。しばらくしてから再試行してください",
)
BAD_SIGNATURE = _t(
    "token.bad_signature",
    en=(
        "the token's signature does not verify (for the built-in issuer: minted with "
        "another data directory's key?)"
    ),
    ja=(
        "トークンの署名を検証できません（組み込み発行者の場合、別のデータディレクトリの鍵で"
        "発行されていませんか）"
    ),
)
EXPIRED = _t(
    "token.expired",
    en="the token has expired; get a new one",
    ja="トークンの有効期限が切れています。新しいトークンを取得してください",
)
NOT_YET_VALID = _t(
    "token.not_yet_valid",
    en="the token is not valid yet (nbf or iat lies in the future; check the clock)",
    ja="トークンはまだ有効になっていません（nbf または iat が未来です。時刻を確認してください）",
)
WRONG_AUDIENCE = _template(
    "token.wrong_audience",
    en="the token is not meant for this service: its audience (aud) is not {audience}",
    ja="このサービス向けのトークンではありません。audience（aud）が {audience} ではありません",
)
WRONG_TOWN_AUDIENCE = _t(
    "token.wrong_town_audience",
    en="the token's audience (aud) is not the one the town registered for this service",
    ja="トークンの audience（aud）が、自治体がこのサービス用に登録したものと異なります",
)
INVALID_CLAIM = _t(
    "token.invalid_claim",
    en="a registered claim of the token (exp, nbf, iat, iss, aud) is invalid",
    ja="トークンの登録済みクレーム（exp・nbf・iat・iss・aud）に誤りがあります",
)
MISSING_CLAIM = _t(
    "token.missing_claim",
    en="the token lacks a required claim (iss, aud, exp, or the subject)",
    ja="トークンに必須のクレーム（iss・aud・exp・主体）がありません",
)
UNUSABLE_CLAIMS = _t(
    "token.unusable_claims",
    en="the token's claims name no usable staff id, town and role",
    ja="トークンのクレームから職員ID・自治体・ロールを読み取れません",
)
TENANT_MISMATCH = _t(
    "token.tenant_mismatch",
    en="the token names another town than its issuer's",
    ja="トークンが発行者の自治体とは別の自治体を指定しています",
)
NON_PRINTABLE = _t(
    "token.non_printable",
    en="a claim of the token holds a control or other non-printable character",
    ja="トークンのクレームに制御文字などの表示できない文字が含まれています",
)
LIFETIME_TOO_LONG = _template(
    "token.lifetime",
    en="the token's lifetime is longer than this service accepts ({seconds} s)",
    ja="トークンの有効期間がこのサービスの上限（{seconds}秒）を超えています",
)
TOWN_NOT_ACTIVE = _t(
    "token.town_not_active",
    en="the token's town is not active on this deployment",
    ja="トークンの自治体はこの環境で稼働していません",
)
INVALID = _t(
    "token.invalid",
    en="the bearer token is not valid",
    ja="ベアラートークンが有効ではありません",
)
SUSPENDED = _t(
    "token.suspended",
    en="this person is suspended by the town",
    ja="この職員は自治体により利用停止されています",
)
