"""robots.txt (longest match) and tdmrep.json (first match) built from one list of path rules per
consenting account say, for every path of that account, exactly what its pages' headers say."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fedserver.web.crawlers import ConsentingAccount, account_rules, robots_txt_text
from tests.e2e.test_signals_on_the_wire import matches, robots_preference

IDS = (1, 12, 120, 1200, 7)  # ids that are prefixes of each other: `$` anchors must hold


def tdmrep(account: ConsentingAccount, path: str) -> int:
    rules = [*({"location": r.path, "tdm-reservation": 0 if r.allows else 1} for r in account_rules(account)),
             {"location": "/", "tdm-reservation": 1}]
    return next(rule["tdm-reservation"] for rule in rules if matches(rule["location"], path))


def expected(account: ConsentingAccount) -> dict[str, bool]:
    user = account.username
    out = {f"/@{user}": not account.exceptions, f"/@{user}?max_id=5": not account.exceptions,
           f"/users/{user}": True, f"/users/{user}/followers": False, f"/users/{user}/outbox": False,
           f"/@{user}x": False, f"/users/{user}x/statuses/1": False}
    for post_id in IDS:
        page_ok = post_id not in account.exceptions and post_id not in account.conversations
        out[f"/@{user}/{post_id}"] = page_ok
        out[f"/@{user}/{post_id}?reply=1"] = page_ok
        out[f"/users/{user}/statuses/{post_id}"] = post_id not in account.exceptions
        out[f"/users/{user}/statuses/{post_id}/activity"] = post_id not in account.exceptions
    return out


@settings(deadline=None, max_examples=80)
@given(st.sets(st.sampled_from(IDS)), st.sets(st.sampled_from(IDS)))
def test_robots_txt_and_tdmrep_rules_say_what_the_headers_say_for_every_path(exceptions, conversations):
    account = ConsentingAccount("alice", tuple(sorted(exceptions)), tuple(sorted(conversations - exceptions)))
    text = robots_txt_text("https://a.example", [account])
    for path, allowed in expected(account).items():
        assert robots_preference(text, "*", path) == ("y" if allowed else "n"), path
        assert robots_preference(text, "GPTBot", path) is None, path
        assert tdmrep(account, path) == (0 if allowed else 1), path
