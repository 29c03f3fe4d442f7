"""The e-invoice demo for ``make run``: suppliers, accounting units, and invoices in
every state, so a newcomer sees an inbox, a rejected invoice with its report, and
an export. Registered through the domain's spec (``SPEC.demo``).

Per demo town, once (a town with suppliers is left alone):

- the official rules are installed from ``../shared/einvoice`` when none are
  (development only; without them the demo says so and seeds nothing);
- the purposes come from the town's manifest (``tenants/*.toml``), as the
  residents' do: 会計課 (``kaikei``) ``invoices.payment``, 土木課 (``doboku``, the
  ordering department) ``invoices.inspection`` and ``invoices.approval.1``,
  副市長室 (``fukushicho``) ``invoices.approval.3``, granted at onboarding. The
  demo grants nothing (an operator may not set a town's permissions): a town
  onboarded before its manifest had them is told which are missing, for its
  admin to grant (``PUT …/departments/{code}``);
- accounting units ``ippan`` (一般会計) and ``suido`` (水道事業会計, needs
  qualified invoices); two suppliers: 株式会社デモ商事 (法人番号 7123456789012,
  T7123456789012) and a non-registered sole proprietor (``X-DEMO0001``);
- invoices through the same checks and filing as the API, moved through the
  workflow by the town's people (through Cedar): received, checked, inspected,
  approved, payment_ordered, paid, returned; one rejected (its report kept);
  then one payment export.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from rich.console import Console

from shared_gov import policy
from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.auth.principal import Principal
from shared_gov.clock import today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.policy import Access, Actor
from shared_gov.policy.admin import list_departments
from shared_gov.policy.purposes import purposes
from shared_gov.towns.names import tenant_names

from . import checks, intake, ledgerbook, paths, releases, rules, workflow
from . import document as d
from . import repository as repo
from .jsonform import render
from .models import AccountingUnit, Supplier
from .schemas import ExportIn

CORPORATION = "7123456789012"
SOLE = "X-DEMO0001"
GRANTS = {
    # What the shipped manifests grant (tenants/*.toml); the demo's own staff act under them.
    "kaikei": ("会計課", ["invoices.payment"]),
    "doboku": ("土木課", ["invoices.inspection", "invoices.approval.1"]),
    "fukushicho": ("副市長室", ["invoices.approval.3"]),
}
RATES = {"S": Decimal(10), "AA": Decimal(8)}


async def count(uow: TenantUnitOfWork) -> int:
    """Suppliers registered in the town (a town with none is seeded)."""
    return len(await repo.suppliers(uow))


async def sample(uow: TenantUnitOfWork) -> tuple[str, str]:
    """A request that works as printed with a 会計課 token: the inbox."""
    del uow
    return "accounting-units", "invoices.payment"


def _access(code: str, subject: str, department: str, purpose: str) -> Access:
    principal = Principal(subject, code, department, frozenset({"staff"}), frozenset())
    actor = Actor(
        tenant=code,
        department=department,
        roles=principal.roles,
        mfa=False,
        purposes=frozenset(GRANTS[department][1]),
        staff_id=subject,
    )
    return Access(principal, actor, purposes()[purpose], policy.engine(), code)


def _invoice(
    number: str,
    lines: list[tuple[int, int, str]],
    seller: d.Party,
    unit: str,
    spec: str = d.STANDARD,
    *,
    days_ago: int = 10,
    per_line: bool = False,
) -> bytes:
    day = today_jst() - timedelta(days=days_ago)
    taxable: dict[str, Decimal] = {}
    doc_lines = []
    for i, (qty, price, code) in enumerate(lines):
        amount = Decimal(qty * price)
        taxable[code] = taxable.get(code, Decimal(0)) + amount
        doc_lines.append(
            d.Line(
                str(i + 1),
                Decimal(qty),
                "H87",
                amount,
                f"品目{i + 1}",
                d.TaxCategory(code, RATES[code]),
                Decimal(price),
            )
        )
    ntr = spec == d.NON_TAX_REGISTERED

    def tax_of(code: str, amount: Decimal) -> Decimal:
        if ntr:
            return Decimal(0)
        if per_line:  # the mistake sg-jp-04 catches: rounding each item, then adding up
            return sum(
                (
                    q * (Decimal(p) * RATES[c] / 100).to_integral_value(ROUND_FLOOR)
                    for q, p, c in lines
                    if c == code
                ),
                Decimal(0),
            )
        return (amount * RATES[code] / 100).to_integral_value(ROUND_FLOOR)

    subtotals = [
        d.TaxSubtotal(tax_of(code, amount), d.TaxCategory(code, RATES[code]), amount)
        for code, amount in taxable.items()
    ]
    tax = sum((s.tax for s in subtotals), Decimal(0))
    net = sum(taxable.values(), Decimal(0))
    doc = d.Document(
        customization_id=spec,
        profile_id="urn:peppol:bis:billing",
        number=number,
        issue_date=day,
        currency="JPY",
        type_code="480" if ntr else "380",
        buyer_reference=unit,
        period_start=day - timedelta(days=20),
        period_end=day,
        seller=seller,
        buyer=d.Party(name="デモ市", endpoint=d.Identifier("3000020132225", "0188")),
        totals=d.Totals(net, net, net + tax, net + tax),
        lines=doc_lines,
        tax_totals=[d.TaxTotal("JPY", tax, subtotals)],
        payment=[d.Payment("30", "0001:001:1:1234567", "ﾃﾞﾓｼﾖｳｼﾞ")],
    )
    return render(doc)[0]


async def missing_grants(db: Database, code: str) -> list[str]:
    """``department: purpose`` the demo's people act under but the town has not granted
    (a town onboarded before its manifest granted them)."""
    current = {dept.code: dept for dept in await list_departments(db, code)}
    missing: list[str] = []
    for dept, (_name, wanted) in GRANTS.items():
        have = set(current[dept].purposes) if dept in current else set()
        missing.extend(f"{dept}: {p}" for p in wanted if p not in have)
    return missing


async def seed_town(
    db: Database, code: str, residents: int, seed: int, progress_console: Console | None = None
) -> int:
    """Seed the invoice demo in town ``code`` (once); returns the invoices filed."""
    del residents, seed
    console = progress_console or Console(stderr=True)
    rules_dir = paths.rules_dir(db.settings)
    if any(v is None for v in releases.status(rules_dir).values()):
        packages = paths.reference_packages()
        if packages is None:
            console.print(
                "invoices: no official rules installed and ../shared/einvoice not found: "
                "the invoice demo is skipped (shared-gov invoices rules install PATH)"
            )
            return 0
        releases.install(packages, rules_dir)
    installed = checks.installed(rules_dir)
    missing = await missing_grants(db, code)
    if missing:
        console.print(
            f"invoices: town {code} has not granted {', '.join(missing)} "
            "(the manifest grants them at onboarding; an admin grants them to a town "
            f"onboarded before: PUT /api/v1/tenants/{code}/departments/<code>)"
        )
    names = tenant_names(code, db.settings.role_prefix)
    corp = Supplier(
        id="",
        supplier_key=CORPORATION,
        kind="corporation",
        name="株式会社デモ商事",
        corporate_number=CORPORATION,
        t_number="T" + CORPORATION,
        bank_account="0001:001:1:1234567",
        bank_holder="ｶ)ﾃﾞﾓｼﾖｳｼﾞ",
    )
    sole = Supplier(
        id="",
        supplier_key=SOLE,
        kind="sole_proprietor",
        name="鈴木 花子",
        bank_account="0005:123:1:7654321",
        bank_holder="ｽｽﾞｷ ﾊﾅｺ",
    )
    corp_party = d.Party(
        name="株式会社デモ商事",
        endpoint=d.Identifier(CORPORATION, "0188"),
        tax_id="T" + CORPORATION,
        legal_id=d.Identifier(CORPORATION, "0188"),
    )
    sole_party = d.Party(
        name="鈴木 花子", id=d.Identifier(SOLE), endpoint=d.Identifier("123456789", "0060")
    )
    plan = [
        ("DEMO-001", [(3, 105, "S"), (2, 128, "AA")], corp_party, "ippan", d.STANDARD, "received"),
        ("DEMO-002", [(10, 1200, "S")], corp_party, "suido", d.STANDARD, "checked"),
        ("DEMO-003", [(1, 98_000, "S")], corp_party, "ippan", d.STANDARD, "inspected"),
        (
            "DEMO-004",
            [(5, 3_300, "S"), (4, 480, "AA")],
            corp_party,
            "ippan",
            d.STANDARD,
            "approved",
        ),
        ("DEMO-005", [(2, 15_000, "S")], corp_party, "suido", d.STANDARD, "payment_ordered"),
        ("DEMO-006", [(1, 2_400_000, "S")], corp_party, "ippan", d.STANDARD, "paid"),
        ("SOLE-001", [(3, 2_000, "S")], sole_party, "ippan", d.NON_TAX_REGISTERED, "returned"),
        ("SOLE-002", [(1, 5_000, "S")], sole_party, "ippan", d.NON_TAX_REGISTERED, "approved"),
    ]
    filed = 0
    async with db.tenant(names) as uow:
        if await repo.suppliers(uow):
            return 0
        await repo.put_unit(uow, AccountingUnit("ippan", "一般会計", False, 7))
        await repo.put_unit(uow, AccountingUnit("suido", "水道事業会計", True, 7))
        for s in (corp, sole):
            s.id = repo.new_id()
            await repo.insert_supplier(uow, s)
        by_party = {id(corp_party): corp, id(sole_party): sole}
        options = rules.Options()
        targets: list[tuple[str, str]] = []
        for i, (number, lines, party, unit, spec, state) in enumerate(plan):
            data = _invoice(number, lines, party, unit, spec, days_ago=30 - i)
            outcome = await intake.file(
                uow,
                by_party[id(party)],
                "xml",
                data,
                checks.check("xml", data, installed, options),
                "ippan",
            )
            if outcome.invoice is not None:
                filed += 1
                targets.append((outcome.invoice.id, state))
        # A rejected one (tax rounded per line), and a non-registered seller to 水道事業.
        for number, lines, party, unit, spec, per_line in (
            ("DEMO-BAD", [(3, 105, "S"), (2, 128, "AA")], corp_party, "ippan", d.STANDARD, True),
            ("SOLE-BAD", [(1, 9_000, "S")], sole_party, "suido", d.NON_TAX_REGISTERED, False),
        ):
            data = _invoice(number, lines, party, unit, spec, per_line=per_line)
            await intake.file(
                uow,
                by_party[id(party)],
                "xml",
                data,
                checks.check("xml", data, installed, options),
                "ippan",
            )
        kaikei = _access(code, "demo-kaikei", "kaikei", "invoices.payment")
        doboku = _access(code, "demo-doboku", "doboku", "invoices.inspection")
        kacho = _access(code, "demo-doboku-kacho", "doboku", "invoices.approval.1")
        fuku = _access(code, "demo-fukushicho", "fukushicho", "invoices.approval.3")
        path = ["checked", "inspected", "approved", "payment_ordered", "paid"]
        steps = {
            "checked": ("check", kaikei),
            "inspected": ("inspect", doboku),
            "approved": ("approve", None),
            "payment_ordered": ("order", kaikei),
            "paid": ("pay", kaikei),
        }
        for invoice_id, state in targets:
            version = 1
            if state == "returned":
                await workflow.advance(
                    uow, kaikei, invoice_id, "return", '"v1"', "品目の数量が発注と異なります"
                )
                continue
            for reached in path[: path.index(state) + 1] if state in path else []:
                step, who = steps[reached]
                if who is None:
                    found = await repo.invoice(uow, invoice_id)
                    assert found is not None  # noqa: S101 - filed just above
                    levels = await repo.approval_levels(uow)
                    who = kacho if workflow.required_level(found.amount, levels) == 1 else fuku
                result = await workflow.advance(uow, who, invoice_id, step, f'"v{version}"', None)
                version = result.version
        await ledgerbook.export(uow, kaikei, ExportIn(encoding="cp932"))
        await record(
            uow,
            operator_actor("demo seed"),
            AuditEvent(action="demo.seed", resource_type="invoice", rows=filed),
        )
    return filed
