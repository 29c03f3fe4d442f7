"""The residents domain's messages (``residents.*``), in Japanese and English.

Listed in the domain's spec (``DomainSpec.messages``): the registry hands
the catalogue to :mod:`shared_gov.messages`, whose tests hold every
catalogue to both languages and the same placeholders.
"""

from __future__ import annotations

from shared_gov.messages.core import Catalogue

CATALOGUE = Catalogue("residents")
_t = CATALOGUE.text
_template = CATALOGUE.template

NO_SUCH_RESIDENT = _t("not_found", en="no such resident", ja="該当する住民はいません")
NO_SUCH_HOUSEHOLD = _t("no_household", en="no such household", ja="該当する世帯はありません")
NO_SUCH_HOUSEHOLD_HERE = _t(
    "no_household_here", en="no such household in this town", ja="この自治体にその世帯はありません"
)
NOT_BOUND = _t(
    "not_bound",
    en="no such resident, or not moving out to this town",
    ja="該当する住民がいないか、この自治体への転出ではありません",
)

# --- versions (ETag / If-Match) -----------------------------------------------------------

IF_MATCH_REQUIRED = _t(
    "if_match_required",
    en="this change needs an If-Match header with the ETag",
    ja="この変更には、ETag の値を入れた If-Match ヘッダーが必要です",
)
IF_MATCH_UNKNOWN = _t(
    "if_match_unknown",
    en="If-Match does not name a version of this record",
    ja="If-Match がこの記録の版を指していません",
)
CHANGED_SINCE_READ = _t(
    "changed_since_read",
    en="the record changed since it was read; reload it",
    ja="読み込んだ後に記録が更新されています。読み込み直してください",
)

# --- conflicts ------------------------------------------------------------------------------

NOT_REGISTERED = _template(
    "not_registered",
    en="the resident is no longer registered (state {state})",
    ja="この住民はすでに住民登録されていません（状態: {state}）",
)
HEAD_CANNOT_SPLIT = _t(
    "head_cannot_split",
    en="the head of a household cannot split from it",
    ja="世帯主は世帯分離できません",
)
ALREADY_HEAD = _t(
    "already_head",
    en="the resident already heads the household",
    ja="この住民はすでに世帯主です",
)
DUPLICATE_INDIVIDUAL_NUMBER = _t(
    "duplicate_individual_number",
    en="another resident of this town has this individual number",
    ja="この個人番号はこの自治体の別の住民に登録されています",
)
DUPLICATE_JUMINHYO_CODE = _t(
    "duplicate_juminhyo_code",
    en="another resident of this town has this 住民票コード",
    ja="この住民票コードはこの自治体の別の住民に登録されています",
)
DUPLICATE_RECORD = _t(
    "duplicate_record",
    en="the record conflicts with an existing one",
    ja="既存の記録と重複しています",
)

# --- field errors -------------------------------------------------------------------------------

BEFORE_BIRTH = _t(
    "before_birth",
    en="must not be before the birth date",
    ja="生年月日より前の日付は指定できません",
)
CHECK_DIGIT = _t("check_digit", en="check digit does not match", ja="検査数字が一致しません")
UNKNOWN_RELATIONSHIP = _t(
    "unknown_relationship", en="not a known 続柄", ja="登録されている続柄ではありません"
)
RELATIONSHIP_REQUIRED = _t(
    "relationship_required",
    en="required, and not 世帯主, when joining a household",
    ja="既存の世帯に入るときは必須で、世帯主以外を指定してください",
)
NEW_HOUSEHOLD_HEAD = _t(
    "new_household_head",
    en="a new household is headed by this person",
    ja="新しい世帯ではこの人が世帯主になります（続柄は指定しません）",
)
KANA_ONLY = _t(
    "kana_only", en="must be written in kana", ja="カナ（ひらがな・カタカナ）で入力してください"
)
NOT_IN_FUTURE = _t(
    "not_in_future", en="must be today or earlier", ja="今日以前の日付を指定してください"
)
NOT_BEFORE = _template(
    "not_before", en="must not be before {date}", ja="{date} より前の日付は指定できません"
)
NOTIFIED_TOO_EARLY = _template(
    "notified_too_early",
    en="must not be more than {days} days before move_date",
    ja="異動日（move_date）の{days}日より前の日付は指定できません",
)
NOTIFIED_BEFORE_MOVE = _t(
    "notified_before_move",
    en="must not be before move_date",
    ja="異動日（move_date）より前の日付は指定できません",
)
NOT_CHANGED_BY = _template(
    "not_changed_by",
    en="not changed by {event}",
    ja="{event} では変更できない項目です",
)
ADDRESS_REQUIRED = _t(
    "address_required",
    en="required for move_within_town",
    ja="転居（move_within_town）では必須です",
)
NAME_CHANGE_NEEDS_NAME = _t(
    "name_change_needs_name",
    en="name_change needs at least one name",
    ja="氏名の変更（name_change）では少なくとも一つの氏名を指定してください",
)
FORMER_HEAD_RELATIONSHIP = _t(
    "former_head_relationship",
    en="the former head's new 続柄 is required",
    ja="元の世帯主の新しい続柄が必要です",
)
IS_CURRENT_NAME = _t(
    "is_current_name",
    en="is the current name: nothing would change",
    ja="現在の氏名と同じで、変更がありません",
)
EXACTLY_ONE_MODE = _t(
    "exactly_one_mode",
    en="give exactly one of: atena_no; individual_number; phone; family_name_kana with birth_date",
    ja=(
        "次のうち一つだけを指定してください: atena_no、individual_number、phone、"
        "family_name_kana と birth_date の組"
    ),
)
KANA_WITH_BIRTH = _t(
    "kana_with_birth",
    en="family_name_kana and birth_date go together",
    ja="family_name_kana と birth_date は組で指定してください",
)
PURPOSE_DOES_NOT_COVER = _template(
    "purpose_does_not_cover",
    en="the purpose does not cover {field}",
    ja="利用目的は {field} を対象としていません",
)
ONE_OF_ID_OR_CODE = _t(
    "one_of_id_or_code",
    en="give exactly one of resident_id and juminhyo_code",
    ja="resident_id と juminhyo_code のどちらか一方だけを指定してください",
)
WITHIN_TOWN = _t(
    "within_town",
    en="a move within the town is move_within_town",
    ja="同じ自治体の中での移動は転居（move_within_town）です",
)
NOT_ON_DEPLOYMENT = _t(
    "not_on_deployment",
    en=(
        "not a town of this deployment: register the move-in from the 転出証明書 "
        "with POST /api/v1/tenants/{{code}}/residents"
    ),
    ja=(
        "この環境の自治体ではありません。転出証明書から POST /api/v1/tenants/{{code}}/residents "
        "で転入を登録してください"
    ),
)
ONLY_DOMESTIC_NAMES_TOWN = _t(
    "only_domestic_names_town",
    en="only a move_out_domestic names a new town",
    ja="転出先の自治体を指定できるのは国内への転出（move_out_domestic）だけです",
)
ACCESS_REPORT_PURPOSE = _template(
    "access_report_purpose",
    en="the access report is given only for purpose {purpose}",
    ja="アクセス記録の開示は利用目的 {purpose} でだけ行えます",
)
EVENT_FEED_CURSOR = _t(
    "event_feed_cursor",
    en="not a cursor of this town's event feed",
    ja="この自治体のイベントフィードのカーソルではありません",
)
NOT_AN_EVENT_TYPE = _template(
    "not_an_event_type",
    en="not an event type: {types}",
    ja="イベントの種類ではありません（指定できるもの: {types}）",
)
