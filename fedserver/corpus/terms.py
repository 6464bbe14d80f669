"""The exact texts people and researchers agree to, versioned and hashed: the consent log and
every corpus record refer to the version (and hash) that was shown."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

TRAIN_AI = "train-ai"  # the purpose the corpus serves, named as in IETF aipref
PURPOSES = (TRAIN_AI,)
LICENSES = ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0")
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
}
SCOPES = ("future", "all")


@dataclass(frozen=True)
class Terms:
    version: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


CONSENT_TERMS = Terms(version="consent-2026-11-v1", text="""\
Allow my posts to be used to train AI models.

If you turn this on, the public posts you write on this server may be given to researchers who have
registered with the server's administrator and signed its data-use agreement, as part of a dataset
used to train AI models (including generative models). Nothing else is shared: followers-only posts
and direct messages are never included, and unlisted posts only if you say so.

- You choose the licence under which your posts are shared: CC0-1.0, CC-BY-4.0 or CC-BY-SA-4.0.
- You choose whether only posts written from now on are included, or your earlier public posts too.
- Your name and handle are not included; posts carry a pseudonymous author id.
- You can exclude any single post, when you write it or later.
- You can turn this off at any time. Your posts then leave the dataset at the next update, and
  every researcher is told to delete them within the period their agreement sets. Copies that a
  researcher has already used to train a model cannot be recalled from that model.
- Every change you make is recorded in a consent history that you can read.
""")

RESEARCHER_TERMS = Terms(version="dua-2026-11-v1", text="""\
Data-use agreement for the opt-in research corpus.

1. Purpose. You may use the corpus only to research and train AI models, as stated when you
   registered. The people in it agreed to exactly that and to nothing more.
2. Removals. The changes feed lists records that must be removed (a person withdrew consent,
   deleted or excluded a post, or left). You must pull it at least every 7 days and delete removed
   records from every copy you hold within 7 days of their appearance in the feed. Models trained
   before a removal need not be retrained, but removed records must not be used again.
3. No redistribution. You must not publish or pass on the corpus, or any removed record, to anyone
   else. Share record ids, never texts, when you need to point to records.
4. No re-identification. You must not try to find out who wrote a record, or link records to
   accounts on this or other servers.
5. Licences. Each record carries its author's licence; honour its conditions (e.g. attribution by
   record id for CC-BY, share-alike for CC-BY-SA).
6. Access. Your token is personal. Pulls are logged. The administrator may revoke access at any time.
""")
