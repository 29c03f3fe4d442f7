"""Field errors of a 422, one entry per kind of msgspec validation error (``sg.field.*``).

msgspec says what is wrong in English (``Expected `str` of length <= 50``);
:func:`shared_gov.validation.msgspec_error_to_field` recognises each kind
and makes it one of these, so that Japanese gets a sentence of its own. The
English of each entry is msgspec's wording, quoted values left out, as the
API has always answered.
"""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM, Message

_t = PLATFORM.text
_template = PLATFORM.template

REQUIRED = _t("field.required", en="required field is missing", ja="必須の項目がありません")
UNKNOWN = _t("field.unknown", en="unknown field", ja="定義されていない項目です")
UNKNOWN_UNNAMED = _t(
    "field.unknown_unnamed",
    en="unknown field",
    ja="定義されていない項目があります（項目名は英小文字・数字・_ のものだけを示します）",
)
NOT_ALLOWED_VALUE = _t(
    "field.enum", en="not one of the allowed values", ja="許可された値のいずれでもありません"
)
NOT_TEXT = _t(
    "field.not_text",
    en="contains a control, format or line-separator character",
    ja="制御文字・書式文字・改行に当たる文字を含んでいます",
)
INVALID_VALUE = _t("field.invalid", en="invalid value", ja="値が正しくありません")
WRONG_TYPE = _template(
    "field.type",
    en="Expected `{expected}`, got `{got}`",
    ja="{expected}を指定してください（{got}が指定されています）",
)
TOO_SHORT_TEXT = _template(
    "field.str_min",
    en="Expected `str` of length >= {n}",
    ja="{n}文字以上で入力してください",
)
TOO_LONG_TEXT = _template(
    "field.str_max",
    en="Expected `str` of length <= {n}",
    ja="{n}文字以内で入力してください",
)
TOO_FEW_ITEMS = _template(
    "field.array_min",
    en="Expected `array` of length >= {n}",
    ja="{n}個以上指定してください",
)
TOO_MANY_ITEMS = _template(
    "field.array_max",
    en="Expected `array` of length <= {n}",
    ja="{n}個以内で指定してください",
)
EXACT_ITEMS = _template(
    "field.array_len",
    en="Expected `array` of length {n}",
    ja="{n}個ちょうど指定してください",
)
TOO_FEW_MEMBERS = _template(
    "field.object_min",
    en="Expected `object` of length >= {n}",
    ja="{n}個以上の項目を指定してください",
)
TOO_MANY_MEMBERS = _template(
    "field.object_max",
    en="Expected `object` of length <= {n}",
    ja="{n}個以内の項目で指定してください",
)
BOUND = _template(
    "field.bound",
    en="Expected `{type}` {op} {n}",
    ja="{type}で{n}{op}を指定してください",
)
MULTIPLE_OF = _template(
    "field.multiple_of",
    en="Expected `{type}` that's a multiple of {n}",
    ja="{type}で{n}の倍数を指定してください",
)
PATTERN = _t(
    "field.pattern",
    en="Expected `str` matching regex",
    ja="形式が正しくありません",
)
INVALID_DATE = _t(
    "field.date",
    en="Invalid RFC3339 encoded date",
    ja="日付の形式が正しくありません（例: 2026-04-01）",
)
INVALID_DATETIME = _t(
    "field.datetime",
    en="Invalid RFC3339 encoded datetime",
    ja="日時の形式が正しくありません（例: 2026-04-01T09:00:00+09:00）",
)
INVALID_TIME = _t(
    "field.time",
    en="Invalid RFC3339 encoded time",
    ja="時刻の形式が正しくありません（例: 09:00:00）",
)
NEEDS_TIMEZONE = _t(
    "field.tz_required",
    en="Expected `datetime` with a timezone component",
    ja="タイムゾーン（例: +09:00）付きの日時を指定してください",
)
NO_TIMEZONE = _t(
    "field.tz_forbidden",
    en="Expected `datetime` with no timezone component",
    ja="タイムゾーンなしの日時を指定してください",
)
INVALID_UUID = _t("field.uuid", en="Invalid UUID", ja="UUIDの形式が正しくありません")
INVALID_BASE64 = _t(
    "field.base64", en="Invalid base64 encoded string", ja="Base64の形式が正しくありません"
)
INTEGER_OUT_OF_RANGE = _t(
    "field.int_range", en="Integer value out of range", ja="整数の値が範囲外です"
)
OTHER = _template(
    "field.other",
    en="{detail}",
    ja="値が正しくありません（{detail}）",
)

# The JSON types msgspec names, for WRONG_TYPE and BOUND.
TYPES: dict[str, Message] = {
    "str": _t("field.type_name.str", en="str", ja="文字列"),
    "int": _t("field.type_name.int", en="int", ja="整数"),
    "float": _t("field.type_name.float", en="float", ja="数値"),
    "bool": _t("field.type_name.bool", en="bool", ja="真偽値（true / false）"),
    "null": _t("field.type_name.null", en="null", ja="null"),
    "array": _t("field.type_name.array", en="array", ja="配列"),
    "object": _t("field.type_name.object", en="object", ja="オブジェクト"),
    "date": _t("field.type_name.date", en="date", ja="日付"),
    "datetime": _t("field.type_name.datetime", en="datetime", ja="日時"),
    "time": _t("field.type_name.time", en="time", ja="時刻"),
    "uuid": _t("field.type_name.uuid", en="uuid", ja="UUID"),
    "decimal": _t("field.type_name.decimal", en="decimal", ja="10進数"),
    "bytes": _t("field.type_name.bytes", en="bytes", ja="バイト列"),
    "duration": _t("field.type_name.duration", en="duration", ja="期間"),
}
# Comparison operators as Japanese says them after the number.
BOUNDS: dict[str, Message] = {
    ">=": _t("field.op.ge", en=">=", ja="以上の値"),
    "<=": _t("field.op.le", en="<=", ja="以下の値"),
    ">": _t("field.op.gt", en=">", ja="より大きい値"),
    "<": _t("field.op.lt", en="<", ja="未満の値"),
}
