"""The 介護保険 domain's sentences (``kaigo.*``), in Japanese and English.

Listed in its spec (``messages=``): a refusal's detail or reason, a field
error. ``Accept-Language: ja`` answers in Japanese; a message *is* its English
text, which the logs and the audit log keep. Parameters are the domain's own
words (states, versions, counts), never a submitted value.
"""

from __future__ import annotations

from shared_gov.messages import Catalogue

CATALOGUE = Catalogue("kaigo")

# --- not found ------------------------------------------------------------------
NO_INSURED = CATALOGUE.text(
    "no_insured", en="no such insured person", ja="該当する被保険者はいません"
)
NO_DETERMINATION = CATALOGUE.text(
    "no_determination", en="no such determination", ja="該当する判定はありません"
)
NO_FACILITY = CATALOGUE.text("no_facility", en="no such facility", ja="該当する施設はありません")

# --- If-Match and versions ------------------------------------------------------------
IF_MATCH_REQUIRED = CATALOGUE.text(
    "if_match_required",
    en="this change needs an If-Match header with the ETag",
    ja="この変更には If-Match（ETag）が必要です",
)
IF_MATCH_INVALID = CATALOGUE.text(
    "if_match_invalid",
    en="If-Match does not name a version of this record",
    ja="If-Match がこの記録の版を指していません",
)
DETERMINATION_CHANGED = CATALOGUE.template(
    "determination_changed",
    en="the determination changed since it was read: it is at {etag}",
    ja="判定は読み込んだ後に変更されました（現在の版: {etag}）。再読込してください",
)
FACILITY_CHANGED = CATALOGUE.template(
    "facility_changed",
    en="the facility changed since it was read: it is at {etag}",
    ja="施設は読み込んだ後に変更されました（現在の版: {etag}）。再読込してください",
)

# --- the queue ------------------------------------------------------------------------
ALREADY_DECIDED = CATALOGUE.template(
    "already_decided",
    en="the determination is {status} already",
    ja="判定は処理済みです（{status}）",
)
SEPARATION_OF_DUTIES = CATALOGUE.text(
    "separation_of_duties",
    en="whoever corrected a determination cannot confirm it (separation of duties)",
    ja="訂正した職員は同じ判定を確定できません（職務の分離）",
)
NOT_A_QUESTION = CATALOGUE.text(
    "not_a_question",
    en="not a question of this determination",
    ja="この判定の確認事項ではありません",
)
NO_INSURED_RECORD = CATALOGUE.text(
    "no_insured_record",
    en="the person has no insured record: confirm the gain first",
    ja="被保険者の記録がありません（先に資格取得を確定してください）",
)
INSURER_UNKNOWN = CATALOGUE.text(
    "insurer_unknown",
    en="the insurer is not known: correct the determination with it",
    ja="保険者が確定していません（訂正で保険者を指定してください）",
)
NO_FACILITY_NAMED = CATALOGUE.text(
    "no_facility_named",
    en="the determination names no facility",
    ja="入所施設が指定されていません",
)
KIND_NOT_CHANGEABLE = CATALOGUE.text(
    "kind_not_changeable",
    en="the kind of this determination cannot be changed",
    ja="この判定の種別は変えられません",
)
NOT_A_LISTED_FACILITY = CATALOGUE.text(
    "not_a_listed_facility",
    en="not a facility of any town's list",
    ja="登録された施設ではありません",
)
FACILITY_CHOICE = CATALOGUE.text(
    "facility_choice",
    en="give a facility_id, or a name and a town",
    ja="facility_id か、name と town を指定します",
)
COVERED_FACILITY_NEEDED = CATALOGUE.text(
    "covered_facility_needed",
    en="name a facility covered by 住所地特例",
    ja="住所地特例の対象施設を指定します",
)
FACILITY_OF_THIS_TOWN = CATALOGUE.text(
    "facility_of_this_town",
    en="a facility of this town is no 住所地特例",
    ja="同じ市町村内の施設は住所地特例になりません",
)
INSURER_NEEDED = CATALOGUE.text("insurer_needed", en="name the insurer", ja="保険者を指定します")
UNKNOWN_KIND = CATALOGUE.template(
    "unknown_kind",
    en="not a kind of determination: {kinds}",
    ja="判定の種別ではありません（{kinds}）",
)
UNKNOWN_STATUS = CATALOGUE.template(
    "unknown_status", en="not a status: {statuses}", ja="状態ではありません（{statuses}）"
)
NOT_A_PAGE = CATALOGUE.text(
    "not_a_page", en="not the next of a previous page", ja="前のページの next ではありません"
)

# --- insured persons ----------------------------------------------------------------------
ONE_OF_TWO = CATALOGUE.text(
    "one_of_two",
    en="give exactly one of insured_number and resident_id",
    ja="被保険者番号（insured_number）か住民（resident_id）のどちらか一方で検索します",
)
FIELD_NOT_READABLE = CATALOGUE.template(
    "field_not_readable",
    en="{field} may not be read for this purpose",
    ja="{field} はこの利用目的では読めません",
)

# --- facilities ------------------------------------------------------------------------------
FACILITY_AT_ADDRESS = CATALOGUE.text(
    "facility_at_address",
    en="the town already has a facility at this address",
    ja="この所在地の施設は登録済みです",
)
FACILITY_IN_A_NOTICE = CATALOGUE.text(
    "facility_in_a_notice",
    en="a 住所地特例 notice names this facility",
    ja="住所地特例の通知がこの施設を指しています",
)
FACILITY_NOT_LISTED = CATALOGUE.text(
    "facility_not_listed",
    en="the facility is not (any more) in its town's list",
    ja="入所施設が施設所在市町村の一覧にありません",
)
FILE_TOO_LARGE = CATALOGUE.text(
    "file_too_large", en="the file is too large", ja="ファイルが大きすぎます"
)
NOT_UTF8 = CATALOGUE.text("not_utf8", en="not a UTF-8 CSV file", ja="UTF-8 の CSV ではありません")
CSV_HEADER = CATALOGUE.text(
    "csv_header",
    en="the header must be name,address,kind,places",
    ja="見出し行は name,address,kind,places です",
)
TOO_MANY_ROWS = CATALOGUE.template(
    "too_many_rows", en="at most {rows} rows", ja="最大 {rows} 行です"
)
COLUMN_COUNT = CATALOGUE.text("column_count", en="wrong number of columns", ja="列の数が違います")
INVALID_TEXT = CATALOGUE.text(
    "invalid_text",
    en="empty, too long or not printable",
    ja="空、長すぎる、または使えない文字があります",
)
UNKNOWN_FACILITY_KIND = CATALOGUE.text(
    "unknown_facility_kind", en="not a kind of facility", ja="施設種別ではありません"
)
PLACES_RANGE = CATALOGUE.text("places_range", en="places: 1 to 10000", ja="定員は 1〜10000 です")
REPEATED_ADDRESS = CATALOGUE.text(
    "repeated_address",
    en="this address is repeated in the file",
    ja="この所在地はファイル内で重複しています",
)

# --- reports ------------------------------------------------------------------------------------
MONTH_FORMAT = CATALOGUE.text(
    "month_format", en="a month as YYYY-MM", ja="YYYY-MM の形式で指定します"
)
MONTH_RANGE = CATALOGUE.text("month_range", en="2000 to 2100", ja="2000〜2100 年です")
