"""介護保険 (long-term care insurance): qualification and premium months decided
from resident events.

The town's resident register changes (転入, 転出, 死亡, …) reach this domain
through the town's outbox; each change, and the daily job that finds who
reaches 65, becomes a *determination*: a proposed change to the town's
被保険者台帳 (insured persons) with its legal date, the article it comes from,
the premium months before and after, and the questions only staff can answer.
介護保険課 staff confirm, correct or reject them in a queue; a confirmed
determination changes the insured person's record in the same transaction.
The date rules themselves are pure functions in :mod:`.rules`
(介護保険法 第9条〜第13条, 年齢計算ニ関スル法律, 民法 第143条).
"""
