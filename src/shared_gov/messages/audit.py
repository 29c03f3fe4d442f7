"""The auditors' endpoints: filters, windows, checkpoints and proofs (``sg.audit.*``)."""

from __future__ import annotations

from shared_gov.messages.core import PLATFORM

_t = PLATFORM.text
_template = PLATFORM.template

NOT_A_CURSOR = _t(
    "audit.not_a_cursor",
    en="not a cursor this server issued",
    ja="このサーバーが発行したカーソルではありません",
)
NOT_A_DATE = _t(
    "audit.not_a_date",
    en="not an ISO 8601 date or date-time",
    ja="ISO 8601 形式の日付または日時ではありません",
)
OUT_OF_RANGE = _t("audit.out_of_range", en="out of range", ja="範囲外です")
NOT_A_RESIDENT_ID = _t(
    "audit.not_a_resident_id",
    en="not a resident id (UUID)",
    ja="住民のID（UUID）ではありません",
)
ONE_OF = _template(
    "audit.one_of", en="one of {values}", ja="次のいずれかを指定してください: {values}"
)
FROM_BEFORE_TO = _t("audit.from_before_to", en="must be before to", ja="to より前にしてください")
WINDOW_TOO_LONG = _t(
    "audit.window_too_long",
    en="the window is at most 366 days",
    ja="期間は最長366日です",
)
TIME_OF_DAY = _t(
    "audit.time_of_day", en="a time of day, HH:MM", ja="時刻を HH:MM で指定してください"
)
TIME_OF_DAY_JST = _t(
    "audit.time_of_day_jst",
    en="a time of day in Japan time, HH:MM",
    ja="日本時間の時刻を HH:MM で指定してください（タイムゾーンは付けません）",
)
AT_MOST = _template("audit.at_most", en="at most {n}", ja="{n}以下にしてください")
START_BEFORE_END = _t(
    "audit.start_before_end",
    en="must be before office_end",
    ja="office_end より前にしてください",
)
NO_CHECKPOINT = _t(
    "audit.no_checkpoint",
    en="the town's audit log has no checkpoint yet",
    ja="この自治体の監査ログにはまだチェックポイントがありません",
)
NOT_IN_CHECKPOINT = _t(
    "audit.not_in_checkpoint",
    en="no such event in the town's latest checkpoint (yet)",
    ja="その記録は自治体の最新のチェックポイントに（まだ）含まれていません",
)
FIRST_NOT_AFTER_SECOND = _t(
    "audit.first_not_after_second",
    en="first must not exceed second",
    ja="first は second 以下にしてください",
)
CHECKPOINT_TOO_SMALL = _t(
    "audit.checkpoint_too_small",
    en="the latest checkpoint is smaller than second",
    ja="最新のチェックポイントが second より小さいです",
)
NO_SUCH_EVENT = _t(
    "audit.no_such_event",
    en="no such event in this town's log",
    ja="この自治体の監査ログにその記録はありません",
)
LOG_NOT_WRITTEN = _t(
    "audit.log_not_written",
    en="the audit log could not be written; retry",
    ja="監査ログを書き込めませんでした。再試行してください",
)
DB_GONE_DURING_COMMIT = _t(
    "audit.db_gone_during_commit",
    en="the database went away during commit; retry",
    ja="確定（コミット）中にデータベースとの接続が切れました。再試行してください",
)
