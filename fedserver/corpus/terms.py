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

RESEARCHER_TERMS_VERSION = "dua-2026-12-v2"
DEFAULT_REMOVAL_DEADLINE_DAYS = 30

# Which form of the records the researcher receives (the admin sets it per researcher; a release
# says it in its manifest). None: the general text, naming both forms.
_FORMS = {
    True: """Records reach you scrubbed: e-mail addresses, phone numbers, and the handles and mention
   links of people who did not consent are replaced by [EMAIL], [PHONE] and [HANDLE].""",
    False: """Records reach you as written: their texts may contain e-mail addresses, phone numbers and
   handles of people who are not in the corpus. You must not extract, keep apart or use them.""",
    None: """Records reach you either as written or scrubbed (e-mail addresses, phone numbers, and the
   handles and mention links of people who did not consent replaced by [EMAIL], [PHONE] and
   [HANDLE]), as the administrator set for you; the terms you accept name which.""",
}


def researcher_terms(removal_deadline_days: int = DEFAULT_REMOVAL_DEADLINE_DAYS,
                     scrubbed: bool | None = None) -> Terms:
    """The data-use agreement with this server's removal deadline and the form of the records the
    researcher receives: both are part of the text, so changing either asks for a new acceptance."""
    days = removal_deadline_days
    return Terms(version=RESEARCHER_TERMS_VERSION, text=f"""\
Data-use agreement for the opt-in research corpus.

1. Purpose. You may use the corpus only to research and train AI models, as stated when you
   registered. The people in it agreed to exactly that and to nothing more.
2. Removals. The changes feed (and GET /api/corpus/v1/removals) lists records that must be removed
   (a person withdrew consent, deleted or excluded a post, or left); an offline release lists them
   in removals.jsonl. You must delete removed records from every copy you hold and confirm it within
   {days} days of a removal's appearance in the feed: POST /api/corpus/v1/removals/ack with the
   cursor up to which you applied every removal, or for a release, its version (or tell the
   administrator which release you applied). Until you confirm removals older than {days} days you
   receive no new data. Models trained before a removal need not be retrained, but removed records
   must not be used again. The people whose records you received can see whether you confirmed.
3. No redistribution. You must not publish or pass on the corpus, or any removed record, to anyone
   else. Share record ids, never texts, when you need to point to records.
4. No re-identification. You must not try to find out who wrote a record, or link records to
   accounts on this or other servers.
5. Licences. Each record carries its author's licence; honour its conditions (e.g. attribution by
   record id for CC-BY, share-alike for CC-BY-SA).
6. Access. Your token is personal. Pulls are logged, and each person in the corpus can see that you
   received their records (your name, organisation, contact and purpose, how many, when). The
   administrator may revoke access at any time.
7. Form. {_FORMS[scrubbed]}
""")


# The general text with the default deadline (pages and releases that name no researcher use
# researcher_terms with the configured deadline).
RESEARCHER_TERMS = researcher_terms()
