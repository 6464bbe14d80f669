"""The Mastodon client API: the third edge beside web/ and federation/, calling the same services."""
