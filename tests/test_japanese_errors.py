"""Problems in Japanese: ``Accept-Language: ja`` renders a problem's title, detail,
reason and every field error from the message catalogues; English stays the
default and says what it always said; no language echoes a submitted value."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from shared_gov.messages import negotiate
from tests.conftest import KAGA, auth
from tests.factories import resident_body

RESIDENTS = f"/api/v1/tenants/{KAGA}/residents"
JA = {"Accept-Language": "ja"}
KANA_OR_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "accept-language" in r.headers["vary"].lower()
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def _japanese(r: httpx.Response, status: int) -> dict[str, Any]:
    """A problem of ``status`` whose title and detail are Japanese, said to be so."""
    body = _problem(r, status)
    assert r.headers["content-language"] == "ja"
    assert KANA_OR_KANJI.search(body["title"]), body
    assert KANA_OR_KANJI.search(body["detail"]), body
    return body


def _english(r: httpx.Response, status: int) -> dict[str, Any]:
    body = _problem(r, status)
    assert r.headers["content-language"] == "en"
    assert not KANA_OR_KANJI.search(body["title"]), body
    return body


async def _both(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The same request without and with ``Accept-Language: ja``."""
    headers = dict(kwargs.pop("headers", {}))
    en = await client.request(method, url, headers=headers, **kwargs)
    ja = await client.request(method, url, headers={**headers, **JA}, **kwargs)
    return en, ja


async def _register(client: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(RESIDENTS, json=resident_body(**overrides), headers=auth(token))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


# --- negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP", "ja"),
        ("JA-jp", "ja"),
        ("ja;q=0.9,en;q=0.8", "ja"),
        ("ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"),
        ("fr, ja;q=0.5", "ja"),
        ("en;q=0.8, ja;q=0.9", "ja"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.9, ja;q=0.8", "en"),
        ("ja;q=0", "en"),
        ("ja;q=0, *", "en"),
        ("*", "en"),
        ("*;q=0.8, ja;q=0.5", "en"),
        ("ja, *;q=0", "ja"),
        ("fr", "en"),
        ("ja;q=2", "en"),  # not a qvalue: the item is ignored
        ("ja;q=abc", "en"),
        ("ja;q=0.5, en;q=0.5", "ja"),  # equal: the one listed first
        ("japanese", "en"),  # a range matches the language or its subtags only
        ("ja" + ",x" * 600, "en"),  # too long to be a browser's: not parsed
    ],
)
def test_accept_language_is_negotiated_with_q_values(header: str | None, language: str) -> None:
    """RFC 9110 §12.5.4: the highest quality wins, ``*`` stands for the rest, q=0
    refuses, anything else falls back to English (never 406)."""
    assert negotiate(header) == language


# --- each status, in both languages -----------------------------------------------------


async def test_400_missing_purpose(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """No X-Purpose: 400 saying so in Japanese, and in the same English as ever."""
    url = f"{RESIDENTS}/{uuid.uuid4()}"
    en, ja = await _both(client, "GET", url, headers=auth(tokens["kaga"], purpose=None))
    assert _english(en, 400)["detail"] == "the X-Purpose header is required for personal data"
    body = _japanese(ja, 400)
    assert body["title"] == "不正なリクエストです"
    assert "X-Purpose" in body["detail"]
    assert "利用目的" in body["detail"]
    assert {k: v for k, v in en.json().items() if k not in ("title", "detail")} == {
        k: v for k, v in body.items() if k not in ("title", "detail")
    }


async def test_401_missing_token(client: httpx.AsyncClient) -> None:
    """No token: 401 saying how to send one."""
    en, ja = await _both(client, "GET", f"{RESIDENTS}/{uuid.uuid4()}")
    assert "Authorization: Bearer" in _english(en, 401)["detail"]
    body = _japanese(ja, 401)
    assert body["title"] == "認証されていません"
    assert "ベアラートークンが必要です" in body["detail"]
    assert ja.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_403_reason_in_japanese(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """A purpose not granted: 403 whose ``reason`` is Japanese too; the policies are ids."""
    person = await _register(client, tokens["kaga"])
    url = f"{RESIDENTS}/{person['id']}"
    en, ja = await _both(client, "GET", url, headers=auth(tokens["kaga"], "kaigo.premium"))
    english = _english(en, 403)
    assert english["reason"] == (
        "purpose kaigo.premium is not granted to this staff member (department shimin)"
    )
    assert english["detail"] == english["reason"]
    body = _japanese(ja, 403)
    assert body["title"] == "許可されていません"
    assert body["reason"] == "利用目的 kaigo.premium はこの職員（所属 shimin）に認められていません"
    assert body["detail"] == body["reason"]
    assert body.get("policies") == english.get("policies")


async def test_404_no_such_resident(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    en, ja = await _both(client, "GET", f"{RESIDENTS}/{uuid.uuid4()}", headers=auth(tokens["kaga"]))
    assert _english(en, 404)["detail"] == "no such resident"
    body = _japanese(ja, 404)
    assert (body["title"], body["detail"]) == ("見つかりません", "該当する住民はいません")


async def test_409_duplicate_number(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """A second registration with the same individual number: 409 naming the field,
    never the number, in either language."""
    first = await _register(client, tokens["kaga"])
    again = resident_body(individual_number=first["individual_number"])
    en, ja = await _both(client, "POST", RESIDENTS, json=again, headers=auth(tokens["kaga"]))
    assert _english(en, 409)["detail"] == (
        "another resident of this town has this individual number"
    )
    body = _japanese(ja, 409)
    assert body["detail"] == "この個人番号はこの自治体の別の住民に登録されています"
    assert first["individual_number"] not in ja.text + en.text


async def test_412_and_428_if_match(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """A stale If-Match (412) and none at all (428), in both languages."""
    person = await _register(client, tokens["kaga"])
    url = f"{RESIDENTS}/{person['id']}/moves"
    registered = resident_body()
    move = {
        "event": "move_within_town",
        "address": "石川県加賀市山代温泉1-1",
        "move_date": registered["notified_on"],
        "notified_on": registered["notified_on"],
    }
    stale = auth(tokens["kaga"], **{"If-Match": '"v99"'})
    en, ja = await _both(client, "POST", url, json=move, headers=stale)
    assert _english(en, 412)["detail"] == "the record changed since it was read; reload it"
    body = _japanese(ja, 412)
    assert body["title"] == "前提条件が満たされていません"
    assert body["detail"] == "読み込んだ後に記録が更新されています。読み込み直してください"
    en, ja = await _both(client, "POST", url, json=move, headers=auth(tokens["kaga"]))
    assert _english(en, 428)["detail"] == "this change needs an If-Match header with the ETag"
    body = _japanese(ja, 428)
    assert body["title"] == "前提条件の指定が必要です"
    assert "If-Match" in body["detail"]


async def test_422_every_field_error_in_japanese(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """A body with a wrong type, a too-long name, a bad enum value, a missing field and
    an unknown field: 422 with one error each at its pointer — the unknown field named —
    every detail Japanese, and no submitted value echoed."""
    body = resident_body(
        sex="MARKER_sex_q9",
        family_name="名" * 51,
        postal_code=9220000,
        nickname="MARKER_value_q9",
    )
    del body["given_name"]
    en, ja = await _both(client, "POST", RESIDENTS, json=body, headers=auth(tokens["kaga"]))
    english = _english(en, 422)
    problem = _japanese(ja, 422)
    assert problem["title"] == "入力内容に誤りがあります"
    assert problem["detail"] == "リクエスト本文に誤りのある項目があります"
    assert english["detail"] == "the request body has invalid fields"
    # Litestar reports one body error at a time; each is checked on its own below.
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {e["pointer"] for e in english["errors"]}
    for item in problem["errors"]:
        assert KANA_OR_KANJI.search(item["detail"]), item
    for response in (en, ja):
        assert "MARKER" not in response.text


@pytest.mark.parametrize(
    ("change", "pointer", "english", "japanese"),
    [
        ({"nickname": "MARKER_q1"}, "/nickname", "unknown field", "定義されていない項目です"),
        ({"MARKER_Key": "x"}, "/", "unknown field", "定義されていない項目があります"),
        ({"山田花子": "x"}, "/", "unknown field", "定義されていない項目があります"),
        (
            {"postal_code": 9220000},
            "/postal_code",
            "Expected `str | null`, got `int`",
            "文字列またはnullを指定してください（整数が指定されています）",
        ),
        (
            {"family_name": "名" * 51},
            "/family_name",
            "Expected `str` of length <= 50",
            "50文字以内で入力してください",
        ),
        ({"sex": "MARKER_q2"}, "/sex", "not one of the allowed values", "許可された値"),
        ({"given_name": None}, "/given_name", "Expected `str`, got `null`", "文字列を指定"),
        ({"birth_date": "1980-13-01"}, "/birth_date", "Invalid RFC3339 encoded date", "日付"),
        ({"postal_code": "12"}, "/postal_code", "Expected `str` matching regex", "形式"),
        ({"family_name": "山\u202e田"}, "/family_name", "contains a control", "制御文字"),
    ],
    ids=[
        "unknown",
        "unknown-not-shown",
        "unknown-kanji",
        "type",
        "length",
        "enum",
        "null",
        "date",
        "pattern",
        "control",
    ],
)
async def test_422_field_error_kinds(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    change: dict[str, Any],
    pointer: str,
    english: str,
    japanese: str,
) -> None:
    """Each kind of validation error has its pointer and a sentence per language; an
    unknown field is named when its name is snake_case (a schema-like name), else
    the pointer stops at its object (the key could be a personal value)."""
    body = resident_body(**change)
    en, ja = await _both(client, "POST", RESIDENTS, json=body, headers=auth(tokens["kaga"]))
    en_errors = _english(en, 422)["errors"]
    ja_errors = _japanese(ja, 422)["errors"]
    assert [e["pointer"] for e in en_errors] == [pointer]
    assert [e["pointer"] for e in ja_errors] == [pointer]
    assert en_errors[0]["detail"].startswith(english), en_errors
    assert japanese in ja_errors[0]["detail"], ja_errors
    for response in (en, ja):
        assert "MARKER" not in response.text
        assert "山田花子" not in response.text


async def test_422_nested_unknown_field_pointer(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """An unknown member of a nested object is named under its object's pointer."""
    r = await client.post(
        "/api/v1/agreements",
        json={
            "provider": KAGA,
            "recipient": "172031",
            "recipient_departments": ["kaigo"],
            "purposes": ["kaigo.qualification"],
            "fields": ["family_name"],
            "actions": ["read"],
            "legal_basis": "x",
            "valid_from": "2026-01-01T00:00:00+09:00",
            "valid_until": "2027-01-01T00:00:00+09:00",
            "extra_member": 1,
        },
        headers={**auth(tokens["kaga_admin"], purpose=None), **JA},
    )
    body = _japanese(r, 422)
    assert [e["pointer"] for e in body["errors"]] == ["/extra_member"]


async def test_query_parameter_problems_in_japanese(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """An unknown query parameter (400) and an invalid one (422) in Japanese."""
    url = f"/api/v1/tenants/{KAGA}/audit/events"
    h = {**auth(tokens["kaga_auditor"], purpose=None), **JA}
    unknown = await client.get(url, params={"resident": "x"}, headers=h)
    body = _japanese(unknown, 400)
    assert "resident" in body["detail"]
    assert "受け付けない" in body["detail"]
    bad = await client.get(url, params={"outcome": "MARKER"}, headers=h)
    problem = _japanese(bad, 422)
    assert problem["detail"] == "クエリパラメータに誤りがあります: outcome"
    assert [e["pointer"] for e in problem["errors"]] == ["/query/outcome"]
    assert "MARKER" not in bad.text


# --- reasons in successful answers ------------------------------------------------------


async def test_withheld_reasons_in_japanese(
    client: httpx.AsyncClient, tokens: dict[str, str], issuer: Any
) -> None:
    """A read without two-factor authentication withholds the individual number;
    the reason is Japanese under ``ja`` (naming the field by its label), English by
    default, and the answer says its language and varies on the header."""
    person = await _register(client, tokens["kaga"])
    single = issuer.mint(subject="k-0002", tenant=KAGA, department="shimin", roles=["staff"])
    url = f"{RESIDENTS}/{person['id']}"
    en, ja = await _both(client, "GET", url, headers=auth(single))
    assert en.status_code == ja.status_code == 200
    assert "individual_number" in ja.json()["withheld"]
    assert en.json()["withheld_reasons"]["individual_number"] == (
        "two-factor authentication required"
    )
    assert ja.json()["withheld_reasons"]["individual_number"] == "二要素認証が必要です"
    assert ja.headers["content-language"] == "ja"
    assert en.headers["content-language"] == "en"
    for r in (en, ja):
        assert "accept-language" in r.headers["vary"].lower()
    assert {k: v for k, v in en.json().items() if k != "withheld_reasons"} == {
        k: v for k, v in ja.json().items() if k != "withheld_reasons"
    }


async def test_explain_names_fields_by_label_in_japanese(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """The admins' "why can't this person see this field": Japanese reasons name the
    field by its label and its name."""
    url = f"/api/v1/tenants/{KAGA}/staff/k-0001/explain"
    h = {**auth(tokens["kaga_admin"], purpose=None), **JA}
    query = {"purpose": "juki.certificate", "department": "shimin"}
    r = await client.get(url, params=query, headers=h)
    assert r.status_code == 200, r.text
    reasons = {f["field"]: f["reason"] for f in r.json()["fields"]}
    assert reasons["phone"] == "利用目的 juki.certificate は 電話番号（phone） を対象としていません"
    assert reasons["family_name"] is None
    r = await client.get(url, params=query, headers=auth(tokens["kaga_admin"], purpose=None))
    reasons = {f["field"]: f["reason"] for f in r.json()["fields"]}
    assert reasons["phone"] == "purpose juki.certificate does not cover phone"
