"""Passwords in URLs (`ws://admin:PW@host`): found, so that profiles, targets and fleet files can
refuse them (a URL is saved, listed and shown in link lines, a secret is a reference), and
masked wherever a URL is shown anyway. A user name alone is no secret and stays."""

from __future__ import annotations

import re

#: [scheme:]//user:password@ : the password runs to the last '@' of the authority (a password
#: may hold one), never past the authority's end.
_USERINFO = re.compile(r"(?P<head>(?:\b[A-Za-z][A-Za-z0-9+.-]*:)?//[^\s/?#@:\[\]]*):(?P<password>[^\s/?#]*)@")
MASKED = r"\g<head>:***@"

#: What a refusal says to do instead.
INSTEAD = "a URL holds no password (URLs are saved and shown): give the secret as the profile's [auth] reference"


def has_password(url: str) -> bool:
    """Whether `url` carries a password in its user information (an empty one too); a host
    (`user:password@host`) is asked about as `//` + host."""
    return "@" in url and _USERINFO.search(url) is not None


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL in it written as `***`."""
    return _USERINFO.sub(MASKED, text) if "@" in text else text


def remember_password(url: str) -> None:
    """A URL from a file that is not fieldctl's to refuse (a connector's own server.config): its
    password is masked in all output from now on, as a resolved secret is."""
    from urllib.parse import urlsplit

    from fieldctl.protocols.core import redact  # here: escaping a line needs none of it

    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL: nothing to remember
        return
    redact.remember(password)
