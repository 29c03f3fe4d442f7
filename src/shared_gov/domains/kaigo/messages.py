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

# --- the console's pages (kaigo/web) ---------------------------------------------------------
# Labels of 介護保険課's pages in the web console; the refusals they show are the
# sentences above, as the API gives them.
_c = CATALOGUE.text

C_SECTION = _c("console.section", en="Long-term care insurance", ja="介護保険")
C_QUEUE = _c("console.queue", en="Determination queue", ja="判定キュー")
C_QUEUE_INTRO = _c(
    "console.queue_intro",
    en="By deadline, the earliest first: open ones past their deadline come first.",
    ja="処理期限の早い順です。未処理で期限を過ぎたものが先頭に来ます。",
)
C_INSURED = _c("console.insured", en="Insured persons", ja="被保険者の照会")
C_DETERMINATION = _c("console.determination", en="Determination", ja="判定")
C_KIND = _c("console.kind", en="Kind", ja="種別")
C_STATUS = _c("console.status", en="Status", ja="状態")
C_OVERDUE_ONLY = _c("console.overdue_only", en="Overdue only", ja="期限超過のみ")
C_OVERDUE = _c("console.overdue", en="overdue", ja="期限超過")
C_APPLY = _c("console.apply", en="Show", ja="表示する")
C_DEADLINE = _c("console.deadline", en="Deadline", ja="処理期限")
C_PROPOSED_ON = _c("console.proposed_on", en="Proposed on", ja="提案日")
C_LEGAL_DATE = _c(
    "console.legal_date", en="Legal date (the change takes effect)", ja="法定の日（得喪等の日）"
)
C_LEGAL_BASIS = _c("console.legal_basis", en="Legal basis", ja="根拠法令")
C_GROUND = _c("console.ground", en="Reason (event)", ja="事由")
C_SUMMARY = _c("console.summary", en="Summary", ja="概要")
C_CATEGORY = _c("console.category", en="Category", ja="被保険者区分")
C_FISCAL_YEAR = _c("console.fiscal_year", en="Fiscal year", ja="年度")
C_PREMIUM_CHANGE = _c(
    "console.premium_change", en="Premium months (before → after)", ja="賦課月数（変更前 → 変更後）"
)
C_QUESTIONS = _c("console.questions", en="Questions for staff", ja="職員への確認事項")
C_NO_QUESTIONS = _c("console.no_questions", en="No questions.", ja="確認事項はありません。")
C_NOTES = _c("console.notes", en="Notes", ja="備考")
C_CORRECTION = _c("console.correction", en="Correction", ja="訂正")
C_CORRECTED_BY = _c("console.corrected_by", en="Corrected by", ja="訂正者")
C_DECIDED_BY = _c("console.decided_by", en="Decided by", ja="処理者")
C_DECIDED_AT = _c("console.decided_at", en="Decided at", ja="処理日時")
C_ANSWERS = _c("console.answers", en="Answers", ja="回答")
C_REJECTION = _c("console.rejection", en="Why it was rejected", ja="却下の理由")
C_FACILITY = _c("console.facility", en="Facility", ja="入所施設")
C_RESIDENT = _c("console.resident", en="Resident id", ja="住民ID")
C_VERSION = _c("console.version", en="Version", ja="版")
C_WITHHELD = _c("console.withheld", en="Withheld from you", ja="表示できない項目")
C_CONFIRM = _c("console.confirm", en="Confirm", ja="確定する")
C_CONFIRM_INTRO = _c(
    "console.confirm_intro",
    en="Confirming changes the insured person's record in the same step.",
    ja="確定すると、同じ処理の中で被保険者の記録が変わります。",
)
C_CORRECT = _c("console.correct", en="Correct", ja="訂正する")
C_CORRECT_INTRO = _c(
    "console.correct_intro",
    en="A correction needs its reason; whoever corrects cannot confirm (someone else does).",
    ja="訂正には理由が必要です。訂正した職員は確定できません（別の職員が確定します）。",
)
C_REJECT = _c("console.reject", en="Reject", ja="却下する")
C_REJECT_INTRO = _c(
    "console.reject_intro",
    en="Rejecting changes nothing in the insured person's record; the reason is kept.",
    ja="却下しても被保険者の記録は変わりません。理由は記録されます。",
)
C_REASON_REQUIRED = _c("console.reason_required", en="Reason (required)", ja="理由（必須）")
C_NEW_DATE = _c("console.new_date", en="Corrected date", ja="訂正後の日付")
C_NEW_KIND = _c("console.new_kind", en="Corrected kind", ja="訂正後の種別")
C_UNCHANGED = _c("console.unchanged", en="(unchanged)", ja="（変更なし）")
C_FACILITY_ID = _c(
    "console.facility_id", en="Facility id (a listed facility)", ja="施設ID（登録された施設）"
)
C_FACILITY_NAME = _c(
    "console.facility_name",
    en="Facility name (in a town not on this platform)",
    ja="施設名（この基盤にない市町村の施設）",
)
C_FACILITY_TOWN = _c("console.facility_town", en="Facility's town code", ja="施設所在市町村コード")
C_INSURER_TOWN = _c("console.insurer_town", en="Insurer's town code", ja="保険者の市町村コード")
C_CONFIRMED = _c("console.confirmed", en="Confirmed.", ja="確定しました。")
C_CORRECTED = _c(
    "console.corrected",
    en="Corrected. Another member of staff confirms it.",
    ja="訂正しました。別の職員が確定します。",
)
C_REJECTED = _c("console.rejected", en="Rejected.", ja="却下しました。")
C_DECIDED_ALREADY = _c(
    "console.decided_already", en="This determination is decided.", ja="この判定は処理済みです。"
)
C_OPEN_RECORD = _c(
    "console.open_record", en="Open this person's insured record", ja="この方の被保険者記録を見る"
)
C_NO_DETERMINATIONS = _c(
    "console.no_determinations", en="No determination matches.", ja="該当する判定はありません。"
)
C_INSURED_NUMBER = _c(
    "console.insured_number", en="Insured number (10 digits)", ja="被保険者番号（10桁）"
)
C_ONE_OF = _c(
    "console.one_of",
    en="Give one of the two. What you type is sent in the form, never in a URL.",
    ja="どちらか一方を入力します。入力した値はフォームで送られ、URL には含まれません。",
)
C_LOOK_UP = _c("console.look_up", en="Look up", ja="照会する")
C_RESULTS = _c("console.results", en="Found", ja="照会結果")
C_NO_ONE = _c("console.no_one", en="No insured person matches.", ja="該当する被保険者はいません。")
C_PERIODS = _c("console.periods", en="Periods of insurance", ja="資格期間")
C_NO_PERIODS = _c("console.no_periods", en="No period.", ja="資格期間はありません。")
C_GAINED = _c("console.gained", en="Gained", ja="取得日")
C_GAIN_REASON = _c("console.gain_reason", en="Gained by", ja="取得事由")
C_LOST = _c("console.lost", en="Lost", ja="喪失日")
C_LOSS_REASON = _c("console.loss_reason", en="Lost by", ja="喪失事由")
C_INSURER = _c("console.insurer", en="Insurer", ja="保険者")
C_TOKUREI = _c("console.tokurei", en="facility special rule (住所地特例)", ja="住所地特例")
C_CARD = _c("console.card", en="Insurance card", ja="被保険者証")
C_ISSUED_ON = _c("console.issued_on", en="issued", ja="交付")
C_RETURNED_ON = _c("console.returned_on", en="returned", ja="返還")
C_PREMIUM_MONTHS = _c("console.premium_months", en="Premium months", ja="保険料の賦課月")
C_SHOW_MONTHS = _c("console.show_months", en="Show the premium months", ja="賦課月を表示する")
C_MONTHS = CATALOGUE.template(
    "console.months",
    en="Fiscal year {year}: {count} months charged",
    ja="{year}年度: 賦課 {count} か月",
)
C_NO_MONTHS = _c("console.no_months", en="No month is charged.", ja="賦課する月はありません。")
C_NOT_ANSWERED = _c("console.not_answered", en="(not answered)", ja="（未回答）")
C_STATUSES = {
    "open": _c("console.status.open", en="open", ja="未処理"),
    "confirmed": _c("console.status.confirmed", en="confirmed", ja="確定"),
    "rejected": _c("console.status.rejected", en="rejected", ja="却下"),
    "superseded": _c("console.status.superseded", en="superseded", ja="後の判定に置換"),
}
C_KINDS = {
    "gain": _c("console.kind.gain", en="gain of qualification", ja="資格取得"),
    "category_change": _c(
        "console.kind.category_change",
        en="category 2 to category 1",
        ja="第2号から第1号への区分変更",
    ),
    "loss": _c("console.kind.loss", en="loss of qualification", ja="資格喪失"),
    "tokurei_keep": _c(
        "console.kind.tokurei_keep", en="住所地特例 (stays insured)", ja="住所地特例（資格継続）"
    ),
    "tokurei_incoming": _c(
        "console.kind.tokurei_incoming",
        en="住所地特例 person moving in (insured elsewhere)",
        ja="住所地特例者の転入（当市町村の被保険者としない）",
    ),
    "tokurei_ends": _c(
        "console.kind.tokurei_ends",
        en="住所地特例 ends (gain of qualification)",
        ja="住所地特例の終了（資格取得）",
    ),
    "record_update": _c(
        "console.kind.record_update",
        en="change of record (qualification unchanged)",
        ja="記載事項の変更（資格の変動なし）",
    ),
}
C_CATEGORIES = {
    "1": _c("console.category.1", en="category 1 (65 or over)", ja="第1号被保険者"),
    "2": _c("console.category.2", en="category 2 (40 to 64)", ja="第2号被保険者"),
}
C_PERSON_STATUSES = {
    "insured": _c("console.person.insured", en="insured", ja="資格あり"),
    "lost": _c("console.person.lost", en="qualification lost", ja="資格喪失"),
    "tokurei_elsewhere": _c(
        "console.person.tokurei_elsewhere",
        en="住所地特例 person of another insurer",
        ja="他市町村の住所地特例者",
    ),
}
