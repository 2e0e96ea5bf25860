"""Evidence tokens drawn many at once (a batch's registration SMS) are tokens as one alone is."""

from __future__ import annotations

import re
import secrets

from backend.services.evidence import TOKEN_BYTES, new_tokens


def test_tokens_drawn_together_look_like_one_drawn_alone_and_differ():
    alone = secrets.token_urlsafe(TOKEN_BYTES)
    tokens = new_tokens(500)
    assert len(tokens) == 500 and len(set(tokens)) == 500
    for token in tokens:
        assert len(token) == len(alone) == 12
        assert re.fullmatch(r"[A-Za-z0-9_-]{12}", token)
    assert new_tokens(0) == []
