"""Resident records (住民記録): registration rules, change events (異動) under
optimistic concurrency, history (履歴), households (世帯) and search.

Rules come from 住民基本台帳法 §7 and 住民記録システム標準仕様書 as summarised
in the project's domain notes (FACTS.md): 異動日 is today or earlier except
for a planned 転出; 処理日 is today (JST); every change keeps a full
snapshot under the next 履歴番号; 宛名番号 / 世帯番号 carry a modulus-11
check digit; two staff must not overwrite each other (ETag / If-Match).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from shared_gov.checkdigits import is_valid_serial, make_serial
from shared_gov.clock import today_jst
from tests.conftest import KAGA, auth
from tests.factories import individual_number, juminhyo_code, resident_body

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shared-gov.example/problems/"
BASE = f"/api/v1/tenants/{KAGA}"
RESIDENTS = f"{BASE}/residents"
INVALID_INDIVIDUAL_NUMBER = "983205673210"  # FACTS.md: check digit should be 4
NO_SUCH_HOUSEHOLD = make_serial(9_999_998)  # valid check digit, never issued in tests

_KATAKANA = "アイウエオカキクケコサシスセソタ"


def _unique_kana() -> str:
    """A katakana family name no other test uses (search results stay unambiguous)."""
    return "".join(_KATAKANA[int(c, 16)] for c in uuid.uuid4().hex[:12])


def _days(n: int) -> str:
    return (today_jst() + timedelta(days=n)).isoformat()


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == PROBLEM_BASE + slug
    assert body["title"]
    assert body["detail"]
    return body


def _pointers(response: Any) -> list[str]:
    """Pointers of a 422 validation problem."""
    body = _problem(response, 422, "validation")
    return sorted(e["pointer"] for e in body["errors"])


class Api:
    """Small client for the resident endpoints, with Kaga staff credentials."""

    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.headers = auth(token)

    async def register_raw(self, body: dict[str, Any]) -> Any:
        return await self.client.post(RESIDENTS, json=body, headers=self.headers)

    async def register(self, **overrides: Any) -> dict[str, Any]:
        r = await self.register_raw(resident_body(**overrides))
        assert r.status_code == 201, r.text
        assert r.headers["etag"] == '"v1"'
        result: dict[str, Any] = r.json()
        return result

    async def get(self, resident_id: str) -> Any:
        return await self.client.get(f"{RESIDENTS}/{resident_id}", headers=self.headers)

    async def current(self, resident_id: str) -> dict[str, Any]:
        r = await self.get(resident_id)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def move(self, resident_id: str, body: dict[str, Any], if_match: str | None) -> Any:
        headers = dict(self.headers)
        if if_match is not None:
            headers["If-Match"] = if_match
        return await self.client.post(
            f"{RESIDENTS}/{resident_id}/moves", json=body, headers=headers
        )

    async def move_ok(self, resident: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Apply ``body`` with the resident's current ETag; returns the new record."""
        r = await self.move(resident["id"], body, f'"v{resident["version"]}"')
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        assert r.headers["etag"] == f'"v{result["version"]}"'
        return result

    async def history(self, resident_id: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"{RESIDENTS}/{resident_id}/history", headers=self.headers)
        assert r.status_code == 200, r.text
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries

    async def household(self, household_no: str) -> dict[str, Any]:
        r = await self.client.get(f"{BASE}/households/{household_no}", headers=self.headers)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def search(self, body: dict[str, Any]) -> Any:
        return await self.client.post(f"{RESIDENTS}/search", json=body, headers=self.headers)


@pytest.fixture
def api(client: Any, tokens: dict[str, str]) -> Api:
    return Api(client, tokens["kaga"])


def _event(event: str, move_date: str | None = None, **fields: Any) -> dict[str, Any]:
    """A change event dated today unless told otherwise, notified today."""
    today = today_jst().isoformat()
    return {"event": event, "move_date": move_date or today, "notified_on": today, **fields}


# --- registration (記載) -------------------------------------------------------


async def test_individual_number_with_wrong_check_digit_is_422(api: Api) -> None:
    """An individual number whose check digit does not match (983205673210) is
    refused with 422 pointing at /individual_number, and is not echoed."""
    r = await api.register_raw(resident_body(individual_number=INVALID_INDIVIDUAL_NUMBER))
    assert _pointers(r) == ["/individual_number"]
    assert INVALID_INDIVIDUAL_NUMBER not in r.text


@pytest.mark.parametrize("value", ["12345678901", "1234567890", "１２３４５６７８９０１"])
async def test_individual_number_of_wrong_format_is_422(api: Api, value: str) -> None:
    """An individual number that is not 12 ASCII digits is refused with 422."""
    r = await api.register_raw(resident_body(individual_number=value))
    _problem(r, 422, "validation")
    assert value not in r.text


@pytest.mark.parametrize("value", ["1234567890", "123456789012", "1234567890a"])
async def test_juminhyo_code_not_11_digits_is_422(api: Api, value: str) -> None:
    """A 住民票コード that is not exactly 11 ASCII digits (e.g. 10 digits) is 422."""
    r = await api.register_raw(resident_body(juminhyo_code=value))
    _problem(r, 422, "validation")
    assert value not in r.text


async def test_juminhyo_code_error_points_at_the_field(api: Api) -> None:
    """A 10-digit 住民票コード gets 422 pointing at /juminhyo_code."""
    r = await api.register_raw(resident_body(juminhyo_code="1234567890"))
    assert _pointers(r) == ["/juminhyo_code"]


async def test_move_date_in_the_future_is_422(api: Api) -> None:
    """An entry's 異動日 may not be in the future: 422 at /move_date."""
    r = await api.register_raw(resident_body(move_date=_days(1), notified_on=_days(0)))
    assert _pointers(r) == ["/move_date"]


async def test_move_date_today_is_accepted(api: Api) -> None:
    """An entry's 異動日 may be today (JST)."""
    resident = await api.register(move_date=_days(0), notified_on=_days(0))
    assert resident["address_since"] == _days(0)


async def test_notified_on_in_the_future_is_422(api: Api) -> None:
    """The 届出日 may not be in the future: 422 at /notified_on."""
    r = await api.register_raw(resident_body(notified_on=_days(2)))
    assert _pointers(r) == ["/notified_on"]


async def test_birth_date_after_move_date_is_422(api: Api) -> None:
    """Nobody moves in before being born: 422 at /move_date."""
    r = await api.register_raw(
        resident_body(birth_date=_days(-2), move_date=_days(-5), notified_on=_days(-1))
    )
    assert _pointers(r) == ["/move_date"]


async def test_birth_date_in_the_future_is_422(api: Api) -> None:
    """A birth date in the future is refused at /birth_date."""
    r = await api.register_raw(
        resident_body(event="birth", birth_date=_days(3), move_date=_days(0))
    )
    assert "/birth_date" in _pointers(r)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("family_name_kana", "山田"),
        ("given_name_kana", "hanako"),
        ("given_name_kana", "ハナ子"),
    ],
)
async def test_kana_field_with_non_kana_is_422(api: Api, field: str, value: str) -> None:
    """フリガナ must be kana: kanji or latin letters give 422 at that field."""
    r = await api.register_raw(resident_body(**{field: value}))
    assert _pointers(r) == [f"/{field}"]
    assert value not in r.text


async def test_hiragana_and_half_width_kana_are_stored_as_full_width_katakana(
    api: Api,
) -> None:
    """Hiragana, half-width katakana (with voiced marks) and spaces are normalised
    to full-width katakana in the stored record."""
    created = await api.register(family_name_kana="やま だ", given_name_kana="ﾀﾞｲｽｹ")
    assert created["family_name_kana"] == "ヤマダ"
    assert created["given_name_kana"] == "ダイスケ"
    stored = await api.current(created["id"])
    assert stored["family_name_kana"] == "ヤマダ"
    assert stored["given_name_kana"] == "ダイスケ"


async def test_household_no_with_bad_check_digit_is_422(api: Api) -> None:
    """A 世帯番号 whose modulus-11 check digit is wrong is 422 at /household_no."""
    good = make_serial(1)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert not is_valid_serial(bad)
    r = await api.register_raw(resident_body(household_no=bad, relationship="子"))
    assert _pointers(r) == ["/household_no"]


async def test_joining_a_household_that_does_not_exist_is_422(api: Api) -> None:
    """A well-formed 世帯番号 that the town never issued is 422 at /household_no."""
    assert is_valid_serial(NO_SUCH_HOUSEHOLD)
    r = await api.register_raw(resident_body(household_no=NO_SUCH_HOUSEHOLD, relationship="子"))
    assert _pointers(r) == ["/household_no"]


async def test_joining_an_existing_household_needs_a_relationship(api: Api) -> None:
    """Joining a household needs a 続柄 other than 世帯主; with one (子) the person
    joins it, and the household lists both under the same head."""
    head = await api.register()
    household_no = head["household_no"]
    assert head["relationship"] == "世帯主"

    missing = await api.register_raw(resident_body(household_no=household_no))
    assert _pointers(missing) == ["/relationship"]
    as_head = await api.register_raw(
        resident_body(household_no=household_no, relationship="世帯主")
    )
    assert _pointers(as_head) == ["/relationship"]
    unknown = await api.register_raw(resident_body(household_no=household_no, relationship="友達"))
    assert _pointers(unknown) == ["/relationship"]

    child = await api.register(household_no=household_no, relationship="子", given_name="太郎")
    assert child["household_no"] == household_no
    assert child["relationship"] == "子"
    household = await api.household(household_no)
    assert household["head_id"] == head["id"]
    members = {m["id"]: m["relationship"] for m in household["members"]}
    assert members == {head["id"]: "世帯主", child["id"]: "子"}


async def test_new_household_gets_a_valid_household_number(api: Api) -> None:
    """Registering without a household creates one headed by the person, with a
    世帯番号 and 宛名番号 that pass the modulus-11 check."""
    resident = await api.register()
    assert is_valid_serial(resident["household_no"])
    assert is_valid_serial(resident["atena_no"])
    household = await api.household(resident["household_no"])
    assert household["head_id"] == resident["id"]


async def test_duplicate_individual_number_is_409_without_the_number(api: Api) -> None:
    """A second resident with the same individual number gets 409, and the
    response does not contain the number."""
    number = individual_number()
    first = await api.register(individual_number=number)
    r = await api.register_raw(resident_body(individual_number=number))
    _problem(r, 409, "conflict")
    assert number not in r.text
    assert first["id"] not in r.text


async def test_duplicate_juminhyo_code_is_409(api: Api) -> None:
    """A second resident with the same 住民票コード gets 409 without the code."""
    code = juminhyo_code()
    await api.register(juminhyo_code=code)
    r = await api.register_raw(resident_body(juminhyo_code=code))
    _problem(r, 409, "conflict")
    assert code not in r.text


async def test_person_who_moved_out_can_move_back_in(api: Api) -> None:
    """A person who moved out keeps their individual number and 住民票コード for life;
    when they move back in (国内転入) they can be registered again (201), while the
    record of the earlier stay remains (state moved_out)."""
    number, code = individual_number(), juminhyo_code()
    first = await api.register(
        individual_number=number, juminhyo_code=code, move_date=_days(-30), notified_on=_days(-30)
    )
    await api.move_ok(first, _event("move_out_domestic", move_date=_days(-20)))
    r = await api.register_raw(resident_body(individual_number=number, juminhyo_code=code))
    assert r.status_code == 201, r.text
    back = r.json()
    assert back["state"] == "active"
    assert back["individual_number"] == number
    assert back["juminhyo_code"] == code


@pytest.mark.parametrize(
    "field", ["event", "family_name", "family_name_kana", "birth_date", "sex", "move_date"]
)
async def test_missing_required_field_is_422_at_that_field(api: Api, field: str) -> None:
    """Leaving out a required member gives 422 pointing at that member."""
    body = resident_body()
    del body[field]
    r = await api.register_raw(body)
    assert _pointers(r) == [f"/{field}"]


# --- change events (修正・消除) and optimistic concurrency ------------------------


async def test_change_without_if_match_is_428(api: Api) -> None:
    """A change without If-Match is refused with 428 and changes nothing."""
    resident = await api.register()
    r = await api.move(
        resident["id"], _event("move_within_town", address="石川県加賀市作見町1"), None
    )
    _problem(r, 428, "precondition-required")
    after = await api.current(resident["id"])
    assert after["version"] == 1
    assert after["address"] == resident["address"]


async def test_stale_if_match_is_412_and_leaves_the_record_unchanged(api: Api) -> None:
    """Two staff read v1; the first change wins (v2), the second one — still sending
    If-Match "v1" — gets 412 and the record keeps the first change."""
    resident = await api.register()
    first = await api.move_ok(resident, _event("move_within_town", address="石川県加賀市作見町2"))
    assert first["version"] == 2
    r = await api.move(
        resident["id"], _event("move_within_town", address="石川県加賀市山代温泉3"), '"v1"'
    )
    _problem(r, 412, "precondition-failed")
    after = await api.current(resident["id"])
    assert after["version"] == 2
    assert after["address"] == "石川県加賀市作見町2"
    assert len(await api.history(resident["id"])) == 2


async def test_move_out_domestic_may_be_dated_in_the_future(api: Api) -> None:
    """A planned 国内転出 may carry a future 異動日: accepted, state moved_out,
    removed on that date, forwarding address kept."""
    resident = await api.register()
    planned = _days(14)
    moved = await api.move_ok(
        resident,
        _event("move_out_domestic", move_date=planned, forward_address="東京都千代田区1-1"),
    )
    assert moved["state"] == "moved_out"
    assert moved["removed_on"] == planned
    assert moved["forward_address"] == "東京都千代田区1-1"
    assert (await api.current(resident["id"]))["state"] == "moved_out"


@pytest.mark.parametrize("event", ["move_within_town", "death", "move_out_abroad"])
async def test_other_events_may_not_be_dated_in_the_future(api: Api, event: str) -> None:
    """Every event but move_out_domestic needs 異動日 today or earlier: 422 at
    /move_date, record unchanged."""
    resident = await api.register()
    fields = {"address": "石川県加賀市作見町4"} if event == "move_within_town" else {}
    body = _event(event, move_date=_days(1), **fields)
    r = await api.move(resident["id"], body, '"v1"')
    assert _pointers(r) == ["/move_date"]
    after = await api.current(resident["id"])
    assert after["version"] == 1
    assert after["state"] == "active"


@pytest.mark.parametrize(
    ("removal", "state"), [("move_out_domestic", "moved_out"), ("death", "deceased")]
)
@pytest.mark.parametrize(
    "change",
    [
        _event("move_within_town", address="石川県加賀市作見町5"),
        _event("name_change", family_name="佐藤", family_name_kana="サトウ"),
        _event("death"),
    ],
    ids=["move_within_town", "name_change", "death"],
)
async def test_removed_resident_cannot_be_changed(
    api: Api, removal: str, state: str, change: dict[str, Any]
) -> None:
    """Once moved out or deceased, any further change is 409 and the record stays."""
    resident = await api.register()
    removed = await api.move_ok(resident, _event(removal))
    assert removed["state"] == state
    r = await api.move(resident["id"], change, f'"v{removed["version"]}"')
    _problem(r, 409, "conflict")
    after = await api.current(resident["id"])
    assert after["version"] == removed["version"]
    assert after["state"] == state
    assert after["address"] == resident["address"]


async def test_history_keeps_a_snapshot_per_change(api: Api) -> None:
    """register + 転居 + 氏名変更 gives 履歴番号 1, 2, 3 with their 異動事由, 処理日 =
    today (JST), the submitted 異動日 / 届出日, and full snapshots: entry 1 has the
    old address, entry 2 the new one, entry 3 the new name."""
    old_address = "石川県加賀市大聖寺南町1-1"
    new_address = "石川県加賀市作見町6-7"
    resident = await api.register(address=old_address, move_date=_days(-10), notified_on=_days(-9))
    moved = await api.move_ok(
        resident,
        {
            "event": "move_within_town",
            "move_date": _days(-3),
            "notified_on": _days(-2),
            "address": new_address,
            "postal_code": "9220001",
        },
    )
    renamed = await api.move_ok(
        moved,
        _event("name_change", family_name="佐藤", family_name_kana="さとう", former_surname="山田"),
    )
    assert renamed["version"] == 3
    assert renamed["history_no"] == 3
    assert renamed["family_name_kana"] == "サトウ"

    entries = await api.history(resident["id"])
    assert [e["history_no"] for e in entries] == [1, 2, 3]
    assert [e["reason"] for e in entries] == ["move_in_domestic", "move_within_town", "name_change"]
    assert [e["reason_ja"] for e in entries] == ["国内転入", "転居", "氏名変更"]
    today = today_jst().isoformat()
    assert [e["processed_on"] for e in entries] == [today, today, today]
    assert [e["move_date"] for e in entries] == [_days(-10), _days(-3), today]
    assert [e["notified_on"] for e in entries] == [_days(-9), _days(-2), today]

    first, second, third = (e["snapshot"] for e in entries)
    assert first["address"] == old_address
    assert first["history_no"] == 1
    assert second["address"] == new_address
    assert second["previous_address"] == old_address
    assert second["address_since"] == _days(-3)
    assert second["family_name"] == "山田"
    assert third["family_name"] == "佐藤"
    assert third["former_surname"] == "山田"
    assert third["address"] == new_address
    assert [s["history_no"] for s in (first, second, third)] == [1, 2, 3]


async def test_history_of_unknown_resident_is_404(api: Api) -> None:
    """History of an id the town does not hold is 404."""
    r = await api.client.get(f"{RESIDENTS}/{uuid.uuid4()}/history", headers=api.headers)
    _problem(r, 404, "not-found")


async def test_head_of_household_change(api: Api) -> None:
    """世帯主変更: the member becomes 世帯主, the former head gets the given 続柄,
    the household's head is the member, and the former head's history records it."""
    head = await api.register(given_name="一郎", sex="male")
    child = await api.register(household_no=head["household_no"], relationship="子")

    missing = await api.move(child["id"], _event("head_of_household_change"), '"v1"')
    assert _pointers(missing) == ["/previous_head_relationship"]

    changed = await api.move_ok(
        child, _event("head_of_household_change", previous_head_relationship="父")
    )
    assert changed["relationship"] == "世帯主"
    assert changed["household_no"] == head["household_no"]

    household = await api.household(head["household_no"])
    assert household["head_id"] == child["id"]
    members = {m["id"]: m["relationship"] for m in household["members"]}
    assert members == {head["id"]: "父", child["id"]: "世帯主"}

    former = await api.current(head["id"])
    assert former["relationship"] == "父"
    assert former["version"] == 2
    former_history = await api.history(head["id"])
    assert [e["reason_ja"] for e in former_history] == ["国内転入", "世帯主変更"]


async def test_head_cannot_become_head_again(api: Api) -> None:
    """The current 世帯主 cannot be made head of their own household (409)."""
    head = await api.register()
    r = await api.move(
        head["id"], _event("head_of_household_change", previous_head_relationship="子"), '"v1"'
    )
    _problem(r, 409, "conflict")


async def test_household_split(api: Api) -> None:
    """世帯分離: the member gets a new 世帯番号 with a valid check digit and is its
    世帯主; the old household keeps only its head."""
    head = await api.register()
    member = await api.register(household_no=head["household_no"], relationship="子")
    split = await api.move_ok(member, _event("household_split"))
    assert split["household_no"] != head["household_no"]
    assert is_valid_serial(split["household_no"])
    assert split["relationship"] == "世帯主"

    new = await api.household(split["household_no"])
    assert new["head_id"] == member["id"]
    assert [m["id"] for m in new["members"]] == [member["id"]]
    old = await api.household(head["household_no"])
    assert old["head_id"] == head["id"]
    assert [m["id"] for m in old["members"]] == [head["id"]]
    assert (await api.history(member["id"]))[-1]["reason_ja"] == "世帯分離"


async def test_head_cannot_split_from_own_household(api: Api) -> None:
    """The 世帯主 cannot split from the household they head (409)."""
    head = await api.register()
    r = await api.move(head["id"], _event("household_split"), '"v1"')
    _problem(r, 409, "conflict")


# --- search --------------------------------------------------------------------


async def test_search_by_each_mode_finds_the_resident(api: Api) -> None:
    """Search by 宛名番号, by individual number, and by kana family name + birth
    date (kana normalised, so hiragana input matches) each find the resident."""
    kana = _unique_kana()
    resident = await api.register(family_name_kana=kana, birth_date="1971-02-03")
    hiragana = "".join(chr(ord(c) - 0x60) for c in kana)
    for query in (
        {"atena_no": resident["atena_no"]},
        {"individual_number": resident["individual_number"]},
        {"family_name_kana": kana, "birth_date": "1971-02-03"},
        {"family_name_kana": hiragana, "birth_date": "1971-02-03"},
    ):
        r = await api.search(query)
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["count"] == 1, query
        assert [x["id"] for x in found["residents"]] == [resident["id"]]
    other_day = await api.search({"family_name_kana": kana, "birth_date": "1971-02-04"})
    assert other_day.json()["count"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"atena_no": "00000019", "individual_number": "123456789018"},
        {"atena_no": "00000019", "family_name_kana": "ヤマダ", "birth_date": "1980-04-01"},
        {"family_name_kana": "ヤマダ"},
        {"birth_date": "1980-04-01"},
    ],
    ids=["none", "two-modes", "atena-and-kana", "kana-without-birth", "birth-without-kana"],
)
async def test_search_needs_exactly_one_complete_mode(api: Api, query: dict[str, Any]) -> None:
    """A search with no mode, two modes, or half of the kana + birth-date mode is 422."""
    r = await api.search(query)
    _problem(r, 422, "validation")


async def test_search_by_invalid_individual_number_is_422(api: Api) -> None:
    """Searching by an individual number with a wrong check digit is 422 at
    /individual_number, without the number."""
    r = await api.search({"individual_number": INVALID_INDIVIDUAL_NUMBER})
    assert _pointers(r) == ["/individual_number"]
    assert INVALID_INDIVIDUAL_NUMBER not in r.text


async def test_search_is_post_only(api: Api) -> None:
    """Search values travel in a POST body, never a URL: GET on the search path is
    405 (not treated as a resident id)."""
    r = await api.client.get(
        f"{RESIDENTS}/search", params={"atena_no": "00000019"}, headers=api.headers
    )
    _problem(r, 405, "method-not-allowed")
    assert "POST" in r.headers["allow"]


def test_helpers_make_distinct_values() -> None:
    """The unique kana helper gives katakana only, and differs per call."""
    a, b = _unique_kana(), _unique_kana()
    assert a != b
    assert all("ァ" <= c <= "ヺ" for c in a)
    assert date.fromisoformat(_days(0)) == today_jst()


# --- text: no control, format or line-separator characters ------------------------

MARKER = "ZZMARKERZZ"


async def _not_registered(api: Api, kana: str) -> None:
    """Nobody with this (unique) kana family name was written."""
    r = await api.search({"family_name_kana": kana, "birth_date": "1980-04-01"})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 0


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("family_name", "\x00"),
        ("given_name", "\t"),
        ("address", "\n"),
        ("address", "\r"),
        ("domicile", "\x7f"),
        ("previous_address", "\x85"),  # C1: NEL
        ("former_surname", "\u2028"),
        ("given_name", "\u202e"),  # RIGHT-TO-LEFT OVERRIDE
        ("family_name", "\u2066"),  # LEFT-TO-RIGHT ISOLATE
        ("address", "\u200b"),  # ZERO WIDTH SPACE
        ("family_name", "\ufeff"),
        ("family_name_kana", "\x00"),
    ],
    ids=repr,
)
async def test_control_characters_in_registered_text_are_422(
    api: Api, field: str, bad: str
) -> None:
    """A name, kana, address, 本籍, 前住所 or 旧氏 holding a control (C0, DEL, C1),
    a line separator, a bidi control or an invisible format character is refused
    with 422 at that field; the value is not echoed and nobody is registered."""
    kana = _unique_kana()
    values = {"family_name_kana": kana, field: "加賀" + MARKER + bad + "市"}
    if field == "family_name_kana":
        values[field] = kana + bad
    r = await api.register_raw(resident_body(**values))
    body = _problem(r, 422, "validation")
    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == [
        (f"/{field}", "contains a control, format or line-separator character")
    ]
    assert MARKER not in r.text
    await _not_registered(api, kana)


async def test_japanese_text_ideographic_space_variants_and_gaiji_are_accepted(
    api: Api,
) -> None:
    """Printable text stays allowed: full-width Japanese, the ideographic space,
    an ideographic variation sequence (葛 + VS17) and a private-use 外字."""
    resident = await api.register(
        family_name="葛\U000e0100城",
        given_name="\ue000子",
        address="石川県加賀市大聖寺南町　１－１",
        domicile="東京都千代田区千代田１番",
    )
    current = await api.current(resident["id"])
    assert current["family_name"] == "葛\U000e0100城"
    assert current["given_name"] == "\ue000子"
    assert current["address"] == "石川県加賀市大聖寺南町　１－１"


@pytest.mark.parametrize(
    "body",
    [
        _event("move_within_town", address="加賀市\x00" + MARKER),
        _event("name_change", family_name="佐藤\u202e" + MARKER),
        _event("name_change", given_name_kana="ハナコ\x1b"),
        _event("name_change", family_name="佐藤", former_surname="山田\n" + MARKER),
        _event("move_out_domestic", forward_address="東京都\u2029" + MARKER),
    ],
    ids=["address", "family_name", "given_name_kana", "former_surname", "forward_address"],
)
async def test_control_characters_in_a_move_are_422(api: Api, body: dict[str, Any]) -> None:
    """Every text of a change event is held to the same rule: 422 at the field,
    the value not echoed, the record unchanged."""
    resident = await api.register()
    r = await api.move(resident["id"], body, '"v1"')
    field = next(k for k, v in body.items() if isinstance(v, str) and not v.isprintable())
    assert _pointers(r) == [f"/{field}"]
    assert MARKER not in r.text
    after = await api.current(resident["id"])
    assert (after["version"], after["state"], after["address"], after["family_name"]) == (
        1,
        "active",
        resident["address"],
        resident["family_name"],
    )


async def test_control_characters_in_a_one_stop_move_in_and_a_search_are_422(api: Api) -> None:
    """The one-stop move-in body and the search body are decoded under the same
    rule: 422 at the field before anything is looked up or written."""
    one_stop = {
        "from_tenant": "172031",
        "resident_id": str(uuid.uuid4()),
        "address": "石川県加賀市\x00" + MARKER,
        "move_date": _days(0),
        "notified_on": _days(0),
    }
    r = await api.client.post(f"{RESIDENTS}/one-stop-move-in", json=one_stop, headers=api.headers)
    assert _pointers(r) == ["/address"]
    assert MARKER not in r.text
    r = await api.client.post(
        f"{RESIDENTS}/one-stop-move-in",
        json={**one_stop, "address": "加賀市", "resident_id": "a\x00b"},
        headers=api.headers,
    )
    assert _pointers(r) == ["/resident_id"]
    r = await api.search({"family_name_kana": "ヤマダ\x00", "birth_date": "1980-04-01"})
    assert _pointers(r) == ["/family_name_kana"]


def test_the_refused_characters_are_every_control_format_and_separator() -> None:
    """TEXT_PATTERN refuses exactly the code points of general category Cc, Cf, Cs,
    Zl and Zp in this Python's Unicode database (a new Unicode version that adds
    a format character makes this fail until the list is extended)."""
    import re
    import sys
    import unicodedata

    from shared_gov.validation import NOT_TEXT, TEXT_PATTERN

    refused = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    pattern = re.compile(TEXT_PATTERN)
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        bad = unicodedata.category(char) in refused
        assert (pattern.search("a" + char + "b") is None) == bad, hex(cp)
        assert (NOT_TEXT.search(char) is not None) == bad, hex(cp)


# --- dates: plausible, and notified when the law allows -------------------------


@pytest.mark.parametrize("birth_date", ["0001-01-01", "1098-04-01", "1844-12-31"])
async def test_implausible_birth_date_is_422(api: Api, birth_date: str) -> None:
    """A birth date before 1845-01-01 (nobody in a register was born earlier:
    validation.EARLIEST_DATE) is refused at /birth_date and nothing is written."""
    kana = _unique_kana()
    r = await api.register_raw(
        resident_body(family_name_kana=kana, birth_date=birth_date, resident_since=None)
    )
    assert _pointers(r) == ["/birth_date"]
    await _not_registered(api, kana)


async def test_earliest_birth_date_is_accepted(api: Api) -> None:
    resident = await api.register(birth_date="1845-01-01")
    assert resident["birth_date"] == "1845-01-01"


async def test_search_by_implausible_birth_date_is_422(api: Api) -> None:
    r = await api.search({"family_name_kana": "ヤマダ", "birth_date": "0001-01-01"})
    assert _pointers(r) == ["/birth_date"]


async def test_resident_since_before_birth_is_422(api: Api) -> None:
    r = await api.register_raw(resident_body(resident_since="1900-01-01"))
    assert _pointers(r) == ["/resident_since"]


async def test_move_dated_before_1845_is_422(api: Api) -> None:
    resident = await api.register()
    r = await api.move(resident["id"], _event("death", move_date="0001-01-01"), '"v1"')
    assert _pointers(r) == ["/move_date"]
    assert (await api.current(resident["id"]))["state"] == "active"


@pytest.mark.parametrize("event", ["move_in_domestic", "birth", "move_in_from_abroad"])
async def test_entry_notified_before_the_move_is_422(api: Api, event: str) -> None:
    """A 転入届 (第22条) or 出生届 is made after the fact: notified_on before
    move_date is refused at /notified_on, decades or a day before; nothing written."""
    for notified_on in ("1990-01-01", _days(-4)):
        kana = _unique_kana()
        body = resident_body(
            event=event,
            family_name_kana=kana,
            birth_date="1980-04-01",
            move_date=_days(-3),
            notified_on=notified_on,
        )
        r = await api.register_raw(body)
        assert _pointers(r) == ["/notified_on"]
        await _not_registered(api, kana)


async def test_late_notification_is_accepted(api: Api) -> None:
    """A notification after the 14 days (期間経過) is still recorded."""
    resident = await api.register(move_date=_days(-400), notified_on=_days(0))
    assert resident["notified_on"] == _days(0)


@pytest.mark.parametrize(
    "event", ["move_within_town", "name_change", "death", "household_split", "move_out_abroad"]
)
async def test_change_notified_decades_before_the_move_is_422(api: Api, event: str) -> None:
    """A change notified decades before it happened is refused at /notified_on
    (転出 included: it may be notified only a bounded time ahead); record unchanged."""
    fields: dict[str, Any] = {
        "move_within_town": {"address": "石川県加賀市作見町9"},
        "name_change": {"family_name": "佐藤", "family_name_kana": "サトウ"},
    }.get(event, {})
    resident = await api.register(relationship="世帯主")
    body = {**_event(event, **fields), "notified_on": "1990-01-01"}
    r = await api.move(resident["id"], body, '"v1"')
    assert _pointers(r) == ["/notified_on"]
    after = await api.current(resident["id"])
    assert (after["version"], after["state"], after["notified_on"]) == (
        1,
        "active",
        resident["notified_on"],
    )


async def test_move_within_town_notified_the_day_before_is_422(api: Api) -> None:
    resident = await api.register()
    body = {**_event("move_within_town", address="加賀市作見町9"), "notified_on": _days(-1)}
    r = await api.move(resident["id"], body, '"v1"')
    assert _pointers(r) == ["/notified_on"]


async def test_move_out_may_be_notified_up_to_14_days_ahead(api: Api) -> None:
    """A 転出届 is made in advance (第24条): up to 14 days before the planned move
    (test_move_out_domestic_may_be_dated_in_the_future: exactly 14), not 15."""
    resident = await api.register()
    r = await api.move(resident["id"], _event("move_out_domestic", move_date=_days(15)), '"v1"')
    assert _pointers(r) == ["/notified_on"]
    assert (await api.current(resident["id"]))["state"] == "active"
    abroad = await api.move_ok(
        resident, {**_event("move_out_abroad", move_date=_days(0)), "notified_on": _days(-14)}
    )
    assert abroad["state"] == "moved_out"


# --- a name change changes the name ------------------------------------------------


async def test_name_change_to_the_same_name_is_422(api: Api) -> None:
    """Every given name equal to the current one (kana compared as stored, so
    hiragana of the same name counts as the same): 422 naming each field; the
    record is unchanged."""
    resident = await api.register()
    for body in (
        _event("name_change", family_name=resident["family_name"]),
        _event(
            "name_change",
            family_name=resident["family_name"],
            family_name_kana="やまだ",
            former_surname="旧姓",
        ),
    ):
        r = await api.move(resident["id"], body, '"v1"')
        expected = sorted(f"/{k}" for k in body if k in ("family_name", "family_name_kana"))
        assert _pointers(r) == expected
    after = await api.current(resident["id"])
    assert after["version"] == 1
    assert after["former_surname"] is None


async def test_name_change_of_one_of_the_names_is_accepted(api: Api) -> None:
    resident = await api.register()
    changed = await api.move_ok(
        resident,
        _event("name_change", family_name=resident["family_name"], given_name="桜子"),
    )
    assert (changed["family_name"], changed["given_name"]) == (resident["family_name"], "桜子")


# --- a move states what changes ----------------------------------------------------


async def test_move_within_town_keeps_the_postal_code_it_omits(api: Api) -> None:
    """The README's example: a 転居 without postal_code keeps the stored one; given,
    it changes; null clears it."""
    resident = await api.register(postal_code="9220000")
    kept = await api.move_ok(resident, _event("move_within_town", address="加賀市作見町1"))
    assert kept["postal_code"] == "9220000"
    assert kept["address"] == "加賀市作見町1"
    changed = await api.move_ok(
        kept, _event("move_within_town", address="加賀市作見町2", postal_code="9220242")
    )
    assert changed["postal_code"] == "9220242"
    cleared = await api.move_ok(
        changed, _event("move_within_town", address="加賀市作見町3", postal_code=None)
    )
    assert cleared["postal_code"] is None
    assert (await api.current(resident["id"]))["postal_code"] is None


async def test_name_change_keeps_the_former_surname_it_omits(api: Api) -> None:
    resident = await api.register(former_surname="大河内")
    kept = await api.move_ok(resident, _event("name_change", given_name="桜子"))
    assert kept["former_surname"] == "大河内"
    cleared = await api.move_ok(kept, _event("name_change", given_name="菫", former_surname=None))
    assert cleared["former_surname"] is None


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("death", "address", "加賀市作見町1"),
        ("name_change", "postal_code", "9220000"),
        ("move_within_town", "family_name", "佐藤"),
        ("household_split", "forward_address", "東京都"),
        ("move_out_domestic", "postal_code", None),
        ("death", "previous_head_relationship", "子"),
    ],
)
async def test_a_field_the_event_does_not_change_is_422(
    api: Api, event: str, field: str, value: Any
) -> None:
    """A stated change that the event would not make is refused (it used to be
    dropped silently): 422 at that field, record unchanged."""
    resident = await api.register(relationship="世帯主")
    fields: dict[str, Any] = {field: value}
    if event == "move_within_town":
        fields["address"] = "加賀市作見町8"
    if event == "name_change":
        fields["given_name"] = "桜子"
    r = await api.move(resident["id"], _event(event, **fields), '"v1"')
    assert _pointers(r) == [f"/{field}"]
    after = await api.current(resident["id"])
    assert (after["version"], after["state"]) == (1, "active")
