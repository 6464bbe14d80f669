"""The language a post is written in: the choices the compose form offers (ISO 639-1 codes, as
Mastodon's picker and the API's `language` take), and the default the form starts with (the
person's last used language, else the instance's default_post_language). A post's language goes
out as its contentMap key (services.as2.note_document)."""
from __future__ import annotations

from fedserver.context import Context
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor

# Codes and names (each in its own language, as Mastodon's picker shows them beside the English).
LANGUAGES: dict[str, str] = {
    "ar": "Arabic · العربية", "bg": "Bulgarian · български", "bn": "Bengali · বাংলা", "ca": "Catalan · català",
    "cs": "Czech · čeština", "cy": "Welsh · Cymraeg", "da": "Danish · dansk", "de": "German · Deutsch",
    "el": "Greek · Ελληνικά", "en": "English", "eo": "Esperanto", "es": "Spanish · español",
    "et": "Estonian · eesti", "eu": "Basque · euskara", "fa": "Persian · فارسی", "fi": "Finnish · suomi",
    "fr": "French · français", "ga": "Irish · Gaeilge", "gd": "Scottish Gaelic · Gàidhlig",
    "gl": "Galician · galego", "he": "Hebrew · עברית", "hi": "Hindi · हिन्दी", "hr": "Croatian · hrvatski",
    "hu": "Hungarian · magyar", "hy": "Armenian · Հայերեն", "id": "Indonesian · Bahasa Indonesia",
    "is": "Icelandic · íslenska", "it": "Italian · italiano", "ja": "Japanese · 日本語", "ka": "Georgian · ქართული",
    "ko": "Korean · 한국어", "la": "Latin · latine", "lt": "Lithuanian · lietuvių", "lv": "Latvian · latviešu",
    "ms": "Malay · Bahasa Melayu", "nl": "Dutch · Nederlands", "no": "Norwegian · norsk", "pl": "Polish · polski",
    "pt": "Portuguese · português", "ro": "Romanian · română", "ru": "Russian · русский", "sk": "Slovak · slovenčina",
    "sl": "Slovenian · slovenščina", "sq": "Albanian · shqip", "sr": "Serbian · српски", "sv": "Swedish · svenska",
    "sw": "Swahili · Kiswahili", "ta": "Tamil · தமிழ்", "th": "Thai · ไทย", "tr": "Turkish · Türkçe",
    "uk": "Ukrainian · українська", "ur": "Urdu · اردو", "vi": "Vietnamese · Tiếng Việt", "zh": "Chinese · 中文",
}


class LanguageError(ValueError):
    """Not a language code we offer (clear message for the person)."""


def checked(code: str | None) -> str | None:
    """A post's language code, lower-cased; None or "" for none given."""
    if not code:
        return None
    code = code.strip().lower()
    if code not in LANGUAGES:
        raise LanguageError(f"{code[:20]!r} is not a language code we know (use ISO 639-1, like en or de)")
    return code


def instance_default(ctx: Context) -> str:
    code = ctx.settings.instance.default_post_language
    return code if code in LANGUAGES else "en"


async def default_for(ctx: Context, actor: Actor) -> str:
    """What the compose form starts with: the language of the person's newest post that has one,
    else the instance default."""
    code = await post_store.last_language(ctx.db.reader, actor.id)
    return code if code in LANGUAGES else instance_default(ctx)
