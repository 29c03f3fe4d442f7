"""The e-invoice domain's sentences (``invoices.*``), in Japanese and English.

Listed in its spec (``messages=``). Two kinds:

- a refusal's detail or reason and a field error: ``Accept-Language: ja``
  answers in Japanese; a message *is* its English text, which the logs and
  the audit log keep;
- a check finding of the platform's own rules (``sg-jp-*``, ``sg-unit-01``, …):
  a report carries every finding in both languages (``report.finding`` renders
  the entry twice), since a supplier's integrator and the town's 会計課 read
  the same stored report.

Parameters are the domain's own words (states, levels, tax categories, an
accounting unit's name as the town registered it), never a submitted value
that could be personal. Each block below belongs to one part of the domain;
add to the block of the part you change (the console's labels have their own).
"""

from __future__ import annotations

from shared_gov.messages import Catalogue

CATALOGUE = Catalogue("invoices")

# ======================================================================================
# Refusals and field errors of the API (intake, 業者登録, settings, workflow, books)
# ======================================================================================

# --- the intake (suppliers' systems) -----------------------------------------------------
CHECKS_UNAVAILABLE = CATALOGUE.template(
    "checks_unavailable",
    en="invoice checks unavailable: {reason}",
    ja="請求書を検査できないため受け付けられません（{reason}）",
)
SELLER_NOT_SUPPLIER = CATALOGUE.text(
    "seller_not_supplier",
    en="the invoice's seller is not the authenticated supplier",
    ja="請求書の売り手が、認証された業者ではありません",
)
SEND_AS_XML_OR_JSON = CATALOGUE.text(
    "send_as_xml_or_json",
    en="send the invoice as application/xml (UBL 2.1) or application/json (the JSON form)",
    ja="請求書は application/xml（UBL 2.1）か application/json（JSON 形式）で送ってください",
)
REJECTED = CATALOGUE.text(
    "rejected",
    en="the invoice was rejected: see the report",
    ja="請求書を受け付けませんでした。検査結果（report）を確認してください",
)
TITLE_REJECTED = CATALOGUE.text(
    "title_rejected", en="Invoice rejected", ja="請求書を受け付けませんでした"
)
TITLE_DUPLICATE = CATALOGUE.text(
    "title_duplicate", en="Duplicate invoice", ja="請求書が重複しています"
)

# --- not found ----------------------------------------------------------------------------
NO_INVOICE = CATALOGUE.text("no_invoice", en="no such invoice", ja="該当する請求書はありません")
NO_SUPPLIER = CATALOGUE.text(
    "no_supplier", en="no such supplier", ja="該当する業者は登録されていません"
)
NO_EXPORT = CATALOGUE.text(
    "no_export", en="no such export", ja="該当する支出命令データの出力はありません"
)
NO_STEP = CATALOGUE.text("no_step", en="no such step", ja="そのような処理はありません")

# --- 業者登録 --------------------------------------------------------------------------------
CHECK_DIGIT = CATALOGUE.text(
    "check_digit", en="check digit does not match", ja="チェックデジットが一致しません"
)
NOT_THE_SUPPLIER_KEY = CATALOGUE.text(
    "not_the_supplier_key", en="is not the supplier key", ja="業者キー（supplier_key）と異なります"
)
CORPORATION_HAS_ONE = CATALOGUE.text(
    "corporation_has_one",
    en="a corporation has one",
    ja="法人には法人番号があります（corporate_number を指定してください）",
)
SUPPLIER_REGISTERED = CATALOGUE.text(
    "supplier_registered",
    en="this supplier is already registered with the town",
    ja="この業者は登録済みです",
)

# --- If-Match, settings ----------------------------------------------------------------------
IF_MATCH_REQUIRED = CATALOGUE.text(
    "if_match_required",
    en="If-Match is required (the ETag you read)",
    ja="If-Match（読み込んだ ETag）が必要です",
)
IF_MATCH_INVALID = CATALOGUE.text(
    "if_match_invalid",
    en="If-Match does not name a version of this record",
    ja="If-Match がこの記録の版を指していません",
)
SETTINGS_CHANGED = CATALOGUE.text(
    "settings_changed",
    en="the settings changed since you read them",
    ja="設定は読み込んだ後に変更されました。再読込してください",
)
NO_UNIT = CATALOGUE.text(
    "no_unit", en="no such accounting unit", ja="該当する会計は登録されていません"
)
LEVELS_ASCENDING = CATALOGUE.text(
    "levels_ascending",
    en="ascending amounts; only the last may be unlimited",
    ja="金額は昇順で指定します。上限なしにできるのは最後の段階だけです",
)

# --- the workflow ------------------------------------------------------------------------------
INVOICE_CHANGED = CATALOGUE.text(
    "invoice_changed",
    en="the invoice changed since you read it",
    ja="請求書は読み込んだ後に変更されました。再読込してください",
)
WRONG_STATE = CATALOGUE.template(
    "wrong_state",
    en="an invoice that is {state} cannot be {target}",
    ja="状態が {state} の請求書は {target} にできません",
)
RETURN_SAYS_WHY = CATALOGUE.text(
    "return_says_why",
    en="a return (差し戻し) says why",
    ja="差し戻しには理由が必要です",
)
INSPECTOR_CANNOT_APPROVE = CATALOGUE.text(
    "inspector_cannot_approve",
    en="whoever confirmed 検収 cannot approve the same invoice (separation of duties)",
    ja="検収した職員は同じ請求書を決裁できません（職務の分離）",
)
LEVEL_NEEDED = CATALOGUE.template(
    "level_needed",
    en="this amount needs approval level {needed} (stated: {have})",
    ja="この金額の決裁には決裁段階 {needed} 以上が必要です（示された段階: {have}）",
)

# --- search, the original, the export ---------------------------------------------------------
NOT_A_CURSOR = CATALOGUE.text(
    "not_a_cursor",
    en="not a cursor this search returned",
    ja="この検索が返した next ではありません",
)
BEFORE_DATE_FROM = CATALOGUE.text(
    "before_date_from", en="is before date_from", ja="date_from より前の日付です"
)
BELOW_AMOUNT_MIN = CATALOGUE.text(
    "below_amount_min", en="is below amount_min", ja="amount_min より小さい金額です"
)
ORIGINAL_WITHHELD = CATALOGUE.text(
    "original_withheld",
    en="the original is withheld",
    ja="この利用目的では原本を取得できません",
)
FIELD_WITHHELD = CATALOGUE.template(
    "field_withheld",
    en="{field} is withheld",
    ja="{field} はこの利用目的では取得できません",
)
ORIGINAL_ALTERED = CATALOGUE.text(
    "original_altered",
    en="the stored original does not match its SHA-256 (run verify)",
    ja="保存された原本が SHA-256 と一致しません（検証 verify を実行してください）",
)

# ======================================================================================
# Check findings of the platform's own rules (both languages go into the report)
# ======================================================================================

T_NUMBER_CHECK_DIGIT = CATALOGUE.text(
    "sg_jp_01",
    en="the check digit of the seller's registration number (T + corporate number) is wrong",
    ja="売り手の適格請求書発行事業者登録番号（T＋法人番号）のチェックデジットが正しくありません。",
)
FRACTION_OF_A_YEN = CATALOGUE.text(
    "sg_jp_02",
    en="a JPY amount has a fraction of a yen",
    ja="円建ての金額に1円未満の端数があります。",
)
TAXABLE_NOT_THE_SUM = CATALOGUE.template(
    "sg_jp_03_sum",
    en="the taxable amount of {rate} is not the sum of its lines, allowances and charges",
    ja="税率区分 {rate} の課税標準額が、明細金額と値引・料金の合計と一致しません。",
)
NO_BREAKDOWN_FOR_RATE = CATALOGUE.template(
    "sg_jp_03_missing",
    en="lines of {rate} have no tax breakdown for their rate",
    ja="税率区分 {rate} の明細がありますが、その税率ごとの内訳がありません。",
)
BREAKDOWN_TWICE = CATALOGUE.template(
    "sg_jp_04_twice",
    en="more than one tax breakdown for {rate} (tax is rounded once per invoice and rate)",
    ja="税率区分 {rate} の内訳が二つ以上あります（端数処理は税率ごとに1回）。",
)
WRONG_RATE = CATALOGUE.template(
    "sg_jp_04_rate",
    en="the rate of tax category {code} is {rate} %",
    ja="税区分 {code} の税率は {rate}% です。",
)
NOT_ROUNDED_ONCE = CATALOGUE.template(
    "sg_jp_04_rounding",
    en="the tax of {rate} is not its taxable amount times the rate, rounded once",
    ja="税率区分 {rate} の消費税額が、課税標準額×税率を1回だけ端数処理した額ではありません。",
)
QUALIFIED_NOT_NON_REGISTERED = CATALOGUE.template(
    "sg_jp_05_specification",
    en="{unit} needs qualified invoices: an invoice of a seller not registered for "
    "consumption tax is not accepted",
    ja="{unit}は適格請求書が必要です（適格請求書発行事業者でない売り手の請求書は"
    "受け付けられません）。",
)
QUALIFIED_NEEDS_T_NUMBER = CATALOGUE.template(
    "sg_jp_05_t_number",
    en="{unit} needs qualified invoices: the seller's registration number "
    "(T + 13 digits) is required",
    ja="{unit}は適格請求書が必要です。売り手の登録番号（T＋13桁）を記載してください。",
)
DUPLICATE = CATALOGUE.text(
    "sg_jp_06",
    en="an invoice with this number and issue date from this supplier was already received",
    ja="同じ請求書番号・発行日の請求書をすでに受け付けています。",
)
UNIT_UNKNOWN = CATALOGUE.text(
    "sg_unit_01_unknown",
    en="the accounting unit the BuyerReference names is not one of the town's",
    ja="BuyerReference の会計コードがこの自治体に登録されていません。",
)
UNIT_NONE = CATALOGUE.text(
    "sg_unit_01_none",
    en="no accounting unit: the invoice names none (BuyerReference) and the town has no default",
    ja="会計（BuyerReference）が指定されておらず、既定の会計もありません。",
)
OFFICIAL_RULE = CATALOGUE.template(
    "official_rule",
    en="the official JP PINT rule {rule} fails",
    ja="JP PINT の公式ルール {rule} に適合しません（説明は英語のとおり）。",
)
UNKNOWN_SPECIFICATION = CATALOGUE.text(
    "sg_spec_01",
    en="the CustomizationID names none of the JP PINT specifications "
    "(standard, non-tax-registered seller, self-billing)",
    ja="CustomizationID が JP PINT の仕様（標準・非登録事業者・自己請求）のいずれでもありません。",
)
SCHEMA_FAILED = CATALOGUE.text(
    "sg_pint_00",
    en="the official JP PINT rules were not run: the invoice does not pass the schema",
    ja="スキーマに適合しないため、JP PINT の公式ルールは実行していません。",
)
RULES_FAILED = CATALOGUE.text(
    "sg_pint_01",
    en="the official JP PINT rules could not be evaluated on this invoice",
    ja="JP PINT の公式ルールをこの請求書に適用できませんでした。",
)
NOT_THE_SCHEMA = CATALOGUE.text(
    "ubl_xsd",
    en="the invoice does not pass the UBL 2.1 schema",
    ja="UBL 2.1 スキーマに適合しません。",
)
