"""The sample domain's messages (``sample.*``): its own sentences, in Japanese and English.

Listed in its spec (``messages=``); the pillars render them in the language
a request asks for without knowing the domain.
"""

from __future__ import annotations

from shared_gov.messages import Catalogue

CATALOGUE = Catalogue("sample")

NO_SUCH_DOG = CATALOGUE.text("no_dog", en="no such dog", ja="該当する犬は登録されていません")
