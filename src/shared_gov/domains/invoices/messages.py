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


# --- the console's pages (invoices/web) --------------------------------------------------------
# Labels of 会計課's and the ordering departments' pages in the web console;
# the refusals they show are the domain's own, as the API gives them.
_c = CATALOGUE.text

C_SECTION = _c("console.section", en="Supplier e-invoices", ja="電子請求")
C_INBOX = _c("console.inbox", en="Invoice inbox", ja="請求書の受信箱")
C_INBOX_INTRO = _c(
    "console.inbox_intro",
    en="Invoices by state, by transaction date.",
    ja="状態ごとの請求書です（取引年月日の順）。",
)
C_SEARCH = _c("console.search", en="Search invoices", ja="請求書の検索")
C_SEARCH_INTRO = _c(
    "console.search_intro",
    en="By transaction date, amount and counterparty, alone or combined (電子帳簿保存法). "
    "What you type is sent in the form, never in a URL.",
    ja="取引年月日・金額・取引先で、単独でも組み合わせても検索できます（電子帳簿保存法）。"
    "入力した値はフォームで送られ、URL には含まれません。",
)
C_DATE_FROM = _c("console.date_from", en="Transaction date from", ja="取引年月日（から）")
C_DATE_TO = _c("console.date_to", en="Transaction date to", ja="取引年月日（まで）")
C_AMOUNT_MIN = _c("console.amount_min", en="Amount at least (yen)", ja="金額（円、以上）")
C_AMOUNT_MAX = _c("console.amount_max", en="Amount at most (yen)", ja="金額（円、以下）")
C_COUNTERPARTY = _c(
    "console.counterparty",
    en="Counterparty (corporate number, T-number or supplier id)",
    ja="取引先（法人番号・登録番号・業者ID）",
)
C_STATE = _c("console.state", en="State", ja="状態")
C_ANY_STATE = _c("console.any_state", en="(any state)", ja="（すべての状態）")
C_FIND = _c("console.find", en="Search", ja="検索する")
C_RESULTS = _c("console.results", en="Invoices found", ja="検索結果")
C_NONE = _c("console.none", en="No invoice matches.", ja="該当する請求書はありません。")
C_NUMBER = _c("console.number", en="Invoice number", ja="請求書番号")
C_ISSUE_DATE = _c("console.issue_date", en="Issued", ja="発行日")
C_TRANSACTION_DATE = _c("console.transaction_date", en="Transaction date", ja="取引年月日")
C_AMOUNT = _c("console.amount", en="Amount due", ja="請求金額")
C_TAX = _c("console.tax", en="Consumption tax", ja="消費税額")
C_UNIT = _c("console.unit", en="Accounting unit", ja="会計")
C_SUPPLIER = _c("console.supplier", en="Counterparty", ja="取引先")
C_RECEIVED_AT = _c("console.received_at", en="Received", ja="受信日時")
C_RETAIN_UNTIL = _c("console.retain_until", en="Kept until", ja="保存期限")
C_INVOICE = _c("console.invoice", en="Invoice", ja="請求書")
C_SPECIFICATION = _c("console.specification", en="Specification", ja="仕様")
C_VERSION = _c("console.version", en="Version", ja="版")
C_CORRECTS = _c("console.corrects", en="Corrects", ja="訂正元の請求書")
C_WITHHELD = _c("console.withheld", en="Withheld from you", ja="表示できない項目")
C_SELLER = _c("console.seller", en="Seller", ja="売り手")
C_REGISTRATION = _c("console.registration", en="Registration number", ja="登録番号")
C_DUE_DATE = _c("console.due_date", en="Due", ja="支払期日")
C_LINES = _c("console.lines", en="Lines", ja="明細")
C_ITEM = _c("console.item", en="Item", ja="品目")
C_QUANTITY = _c("console.quantity", en="Quantity", ja="数量")
C_PRICE = _c("console.price", en="Unit price", ja="単価")
C_LINE_AMOUNT = _c("console.line_amount", en="Amount", ja="金額")
C_TAX_RATE = _c("console.tax_rate", en="Tax rate (%)", ja="税率（%）")
C_REPORT = _c("console.report", en="Check report", ja="検査結果（チェックレポート）")
C_RULES_RUN = _c("console.rules_run", en="Rules run", ja="適用した規則")
C_NO_FINDINGS = _c("console.no_findings", en="No finding.", ja="指摘事項はありません。")
C_RULE = _c("console.rule", en="Rule", ja="規則")
C_SEVERITY = _c("console.severity", en="Severity", ja="重要度")
C_LOCATION = _c("console.location", en="Where", ja="位置")
C_FINDING = _c("console.finding", en="Finding", ja="内容")
C_SEVERITIES = {
    "fatal": _c("console.severity.fatal", en="fatal", ja="致命的"),
    "warning": _c("console.severity.warning", en="warning", ja="警告"),
    "information": _c("console.severity.information", en="information", ja="情報"),
}
C_HISTORY = _c("console.history", en="History (the sealed ledger)", ja="経過（封印された台帳）")
C_STEP = _c("console.step", en="Step", ja="処理")
C_ACTOR = _c("console.actor", en="By", ja="処理者")
C_AT = _c("console.at", en="When", ja="日時")
C_ORIGINAL = _c("console.original", en="Original as received", ja="原本（受信したまま）")
C_ORIGINAL_INTRO = _c(
    "console.original_intro",
    en="The bytes the supplier sent, shown as text (escaped); the download is byte for byte "
    "the same, with its SHA-256.",
    ja="取引先が送ったバイト列を文字として（エスケープして）表示します。"
    "ダウンロードはバイト単位で同一で、SHA-256 で確かめられます。",
)
C_SHOW_ORIGINAL = _c("console.show_original", en="Show the original", ja="原本を表示する")
C_DOWNLOAD_ORIGINAL = _c(
    "console.download_original",
    en="Download the original (unchanged)",
    ja="原本をダウンロード（変更なし）",
)
C_STATES = {
    "received": _c("console.state.received", en="received", ja="受付"),
    "checked": _c("console.state.checked", en="checked", ja="確認済み"),
    "inspected": _c("console.state.inspected", en="inspected (検収)", ja="検収済み"),
    "approved": _c("console.state.approved", en="approved", ja="決裁済み"),
    "payment_ordered": _c("console.state.payment_ordered", en="payment ordered", ja="支出命令済み"),
    "paid": _c("console.state.paid", en="paid", ja="支払済み"),
    "returned": _c("console.state.returned", en="returned (差し戻し)", ja="差し戻し"),
}
C_STEPS = {
    "check": _c("console.step.check", en="Check (確認)", ja="確認する"),
    "inspect": _c("console.step.inspect", en="Inspect (検収)", ja="検収する"),
    "approve": _c("console.step.approve", en="Approve (決裁)", ja="決裁する"),
    "order": _c("console.step.order", en="Order the payment (支出命令)", ja="支出命令する"),
    "pay": _c("console.step.pay", en="Record the payment", ja="支払済みにする"),
    "return": _c("console.step.return", en="Return to the supplier (差し戻し)", ja="差し戻す"),
}
C_STEP_INTROS = {
    "check": _c(
        "console.intro.check",
        en="会計課: the invoice's content is right.",
        ja="会計課: 請求の内容が正しいことを確認します。",
    ),
    "inspect": _c(
        "console.intro.inspect",
        en="The ordering department: delivered as ordered (検収).",
        ja="発注課: 給付が発注どおり完了したことを確認します（検収）。",
    ),
    "approve": _c(
        "console.intro.approve",
        en="決裁 under the approval level the amount needs; whoever confirmed 検収 "
        "cannot approve the same invoice.",
        ja="金額に応じた決裁区分の利用目的で決裁します。検収した職員は同じ請求書を決裁できません。",
    ),
    "order": _c(
        "console.intro.order",
        en="会計課: order the payment (支出命令).",
        ja="会計課: 支出命令を行います。",
    ),
    "pay": _c(
        "console.intro.pay",
        en="会計課: the payment was made.",
        ja="会計課: 支払が完了したことを記録します。",
    ),
    "return": _c(
        "console.intro.return",
        en="Returned to the supplier, who sees the reason (required).",
        ja="取引先に差し戻します。理由は取引先に通知されます（必須）。",
    ),
}
C_DONE = {
    "check": _c("console.done.check", en="Checked.", ja="確認しました。"),
    "inspect": _c("console.done.inspect", en="Inspected (検収).", ja="検収しました。"),
    "approve": _c("console.done.approve", en="Approved.", ja="決裁しました。"),
    "order": _c("console.done.order", en="Payment ordered.", ja="支出命令しました。"),
    "pay": _c("console.done.pay", en="Recorded as paid.", ja="支払済みにしました。"),
    "return": _c("console.done.return", en="Returned to the supplier.", ja="差し戻しました。"),
}
C_REASON_REQUIRED = _c("console.reason_required", en="Reason (required)", ja="理由（必須）")
C_NOTHING_TO_DO = _c(
    "console.nothing_to_do",
    en="No step of this invoice is yours to take under the purposes you hold.",
    ja="あなたの利用目的で行える処理はありません。",
)
C_EXPORT = _c("console.export", en="Payment export", ja="支払データの出力")
C_EXPORT_INTRO = _c(
    "console.export_intro",
    en="Approved invoices (approved, payment ordered) not exported yet, as CSV for the "
    "financial accounting system. Each invoice is exported once.",
    ja="決裁済み・支出命令済みで未出力の請求書を、財務会計システム向けの CSV に書き出します。"
    "各請求書は一度だけ出力されます。",
)
C_ENCODING = _c("console.encoding", en="Character encoding", ja="文字コード")
C_REEXPORT = _c(
    "console.reexport",
    en="Re-export: an earlier export's id (optional)",
    ja="再出力する出力ID（任意）",
)
C_REEXPORT_INTRO = _c(
    "console.reexport_intro",
    en="A re-export gives exactly the invoices of the export named, again; it is recorded "
    "in the audit log. The id is in the CSV's export_id column.",
    ja="再出力は、指定した出力の請求書をそのまま出力し直します（監査ログに記録されます）。"
    "出力IDは CSV の export_id 列にあります。",
)
C_DOWNLOAD = _c("console.download", en="Download the CSV", ja="CSV をダウンロード")
