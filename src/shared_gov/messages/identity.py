"""Towns, their identity providers, enrolment and onboarding (``sg.identity.*``)."""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

NO_SUCH_ACTIVE_TENANT = _t(
    "identity.no_such_active_tenant",
    en="no such active tenant",
    ja="稼働中の該当する自治体はありません",
)
NO_SUCH_TENANT = _t("identity.no_such_tenant", en="no such tenant", ja="該当する自治体はありません")

# --- a town's issuer ------------------------------------------------------------------

NO_ISSUER = _t(
    "identity.no_issuer",
    en="the town has no issuer of its own",
    ja="この自治体は独自の発行者（IdP）を登録していません",
)
NOT_ENROLLED = _t(
    "identity.not_enrolled",
    en="the town is not enrolled: its information-policy office redeems the enrolment code",
    ja="この自治体はまだ登録手続きをしていません。情報政策担当が登録コードで手続きしてください",
)
PROPOSED_IS_CURRENT = _t(
    "identity.proposed_is_current",
    en="the proposed issuer is the one in effect",
    ja="提案された発行者は現在有効なものと同じです",
)
URL_NOT_FOR_TOWN = _t(
    "identity.url_not_for_town",
    en="this issuer URL cannot be registered for this town",
    ja="この発行者URLはこの自治体には登録できません",
)
URL_IS_PLATFORMS = _t(
    "identity.url_is_platforms",
    en="this issuer URL is the platform's own",
    ja="この発行者URLはプラットフォーム自身のものです",
)
NO_PENDING_CHANGE = _t(
    "identity.no_pending_change",
    en="no issuer change is pending",
    ja="保留中の発行者の変更はありません",
)
NO_SUCH_PROPOSAL = _t(
    "identity.no_such_proposal",
    en="no such issuer proposal",
    ja="該当する発行者の変更提案はありません",
)
PROPOSAL_NOT_PENDING = _template(
    "identity.proposal_not_pending",
    en="the proposal is {status}, not pending",
    ja="提案は {status} の状態で、保留中ではありません",
)
DIGEST_MISMATCH = _t(
    "identity.digest_mismatch",
    en="the digest is not the proposal's: read the pending proposal again",
    ja="ダイジェストが提案と一致しません。保留中の提案を読み直してください",
)
OWN_APPROVAL = _t(
    "identity.own_approval",
    en="nobody approves their own issuer change; another admin of the town must",
    ja="自分が提案した発行者の変更は承認できません。自治体の別の管理者が承認してください",
)
APPROVER_ISSUER = _t(
    "identity.approver_issuer",
    en="the approving token was not verified by the town's issuer in effect",
    ja="承認に使ったトークンは、自治体で現在有効な発行者によるものではありません",
)
SUSPENDED_APPROVER = _t(
    "identity.suspended_approver",
    en="a suspended admin approves nothing",
    ja="利用停止中の管理者は承認できません",
)
PROPOSER_SUSPENDED = _t(
    "identity.proposer_suspended",
    en="the proposer is suspended: the proposal is void",
    ja="提案者が利用停止されたため、提案は無効になりました",
)
ISSUER_CHANGED = _t(
    "identity.issuer_changed",
    en="the town's issuer changed since the proposal: it is void",
    ja="提案の後に自治体の発行者が変わったため、提案は無効になりました",
)
PROPOSAL_VOID = _t("identity.proposal_void", en="the proposal is void", ja="提案は無効です")
ISSUER_REQUIRED = _t(
    "identity.issuer_required", en="an issuer is required", ja="発行者の指定が必要です"
)

# --- an issuer's settings (PUT …/issuer, enrolment, manifests) --------------------------

EXPECTED_OBJECT = _t(
    "identity.expected_object", en="expected a JSON object", ja="JSONオブジェクトを指定してください"
)
NO_SYMMETRIC = _t(
    "identity.no_symmetric",
    en="'none' and HMAC (HS*) algorithms cannot be pinned for an issuer",
    ja="発行者には 'none' や HMAC（HS*）のアルゴリズムを指定できません",
)
ASYMMETRIC_ONLY = _t(
    "identity.asymmetric_only",
    en="only asymmetric algorithms",
    ja="公開鍵方式のアルゴリズムだけを指定できます",
)
ONE_OF_JWKS = _t(
    "identity.one_of_jwks",
    en="give exactly one of jwks_uri and jwks",
    ja="jwks_uri と jwks のどちらか一方だけを指定してください",
)
HTTPS_ONLY = _t(
    "identity.https_only", en="must be an https URL", ja="https のURLを指定してください"
)
PUBLIC_KEYS_ONLY = _t(
    "identity.public_keys_only",
    en="must hold public keys only",
    ja="公開鍵だけを含めてください",
)
NO_KEY_FITS = _t(
    "identity.no_key_fits",
    en="no key fits the pinned algorithms",
    ja="指定したアルゴリズムに合う鍵がありません",
)
NOT_A_JWKS = _t("identity.not_a_jwks", en="not a JWKS document", ja="JWKS の文書ではありません")
TOO_MANY_KEYS = _t("identity.too_many_keys", en="too many keys", ja="鍵が多すぎます")
NO_USABLE_KEY = _t(
    "identity.no_usable_key",
    en="no usable public signing key",
    ja="使える署名用の公開鍵がありません",
)
HAS_NO_HOST = _t("identity.has_no_host", en="has no host", ja="ホストがありません")
INTERNAL_ADDRESS = _t(
    "identity.internal_address",
    en="points at an internal address",
    ja="内部ネットワークのアドレスを指しています",
)
DOES_NOT_RESOLVE = _t(
    "identity.does_not_resolve",
    en="host name does not resolve",
    ja="ホスト名を解決できません",
)
RESOLVES_UNUSABLE = _t(
    "identity.resolves_unusable",
    en="host name resolves to an unusable address",
    ja="ホスト名が使えないアドレスに解決されます",
)
RESOLVES_INTERNAL = _t(
    "identity.resolves_internal",
    en="host name resolves to an internal address",
    ja="ホスト名が内部ネットワークのアドレスに解決されます",
)

# --- enrolment ---------------------------------------------------------------------------

ENROLLED_ALREADY = _t(
    "identity.enrolled_already",
    en="the town is enrolled already",
    ja="この自治体は登録手続きを済ませています",
)
ENROLLED_ADMINS_ONLY = _t(
    "identity.enrolled_admins_only",
    en="the town is enrolled: only its admins change its identity",
    ja="この自治体は登録済みです。認証基盤を変更できるのは自治体の管理者だけです",
)
NO_CODE_OUTSTANDING = _t(
    "identity.no_code_outstanding",
    en="no enrolment code is outstanding for this town",
    ja="この自治体に有効な登録コードはありません",
)
WRONG_CODE = _t("identity.wrong_code", en="wrong enrolment code", ja="登録コードが違います")
CODE_EXPIRED = _t(
    "identity.code_expired",
    en="the enrolment code has expired; ask the operator for a new one",
    ja="登録コードの有効期限が切れています。運用者に新しいコードを依頼してください",
)
TOO_MANY_ATTEMPTS = _t(
    "identity.too_many_attempts",
    en="too many enrolment attempts; wait a minute",
    ja="登録の試行が多すぎます。1分ほど待ってください",
)
PRINTABLE_ONLY = _t(
    "identity.printable_only",
    en="must be printable text",
    ja="表示できる文字だけで入力してください",
)

# --- onboarding (manifests) -----------------------------------------------------------------

CHECK_DIGIT = _t(
    "identity.check_digit", en="check digit does not match", ja="検査数字が一致しません"
)
DUPLICATE_DEPARTMENT = _t(
    "identity.duplicate_department", en="duplicate department", ja="部署が重複しています"
)
IDENTITY_IS_TOWNS = _template(
    "identity.identity_is_towns",
    en=(
        "an existing town's identity provider, departments and permissions are the "
        "town's own: {reasons}"
    ),
    ja="既存の自治体の認証基盤・部署・権限は自治体自身が管理します: {reasons}",
)
ISSUER_BY_ENROLMENT = _t(
    "identity.issuer_by_enrolment",
    en=(
        "its identity provider is set by the town's enrolment and changed by its "
        "admins only (PUT /api/v1/tenants/{{code}}/issuer)"
    ),
    ja=(
        "認証基盤は自治体の登録手続きで設定され、自治体の管理者だけが変更します"
        "（PUT /api/v1/tenants/{{code}}/issuer）"
    ),
)
DEPARTMENTS_BY_ADMINS = _t(
    "identity.departments_by_admins",
    en=(
        "its departments and their purposes are changed by the town's admins only "
        "(PUT /api/v1/tenants/{{code}}/departments/{{department}})"
    ),
    ja=(
        "部署とその利用目的を変更できるのは自治体の管理者だけです"
        "（PUT /api/v1/tenants/{{code}}/departments/{{department}}）"
    ),
)
ISSUER_NOT_IN_MANIFEST = _t(
    "identity.issuer_not_in_manifest",
    en=(
        "a town's identity provider is not part of its manifest outside development: "
        "the town registers it when it redeems its enrolment code"
    ),
    ja=(
        "開発環境以外では自治体の認証基盤はマニフェストに含めません。"
        "自治体が登録コードで手続きするときに登録します"
    ),
)
ALREADY_OFFBOARDED = _t(
    "identity.already_offboarded",
    en="already offboarded; its keys are destroyed",
    ja="利用終了の手続きは済んでおり、鍵は破棄されています",
)
