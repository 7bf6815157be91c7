# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files, directories and secrets on the host, converged without side effects in check mode.

Every function takes a ``Host`` (the few things it needs from AnsibleModule) and returns
what it changed (or would change), so the module can report it and decide restarts.
"""

from __future__ import annotations

import base64
import binascii
import grp
import hashlib
import os
import pwd
import re
import secrets
import stat
import string
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

from ansible_collections.hearth.matrix.plugins.module_utils.component import (
    SECRET_REF_RE,
    Directory,
    File,
    Link,
    Ownership,
    Secret,
    ServiceUser,
)

# What a secret looks like in check mode before it exists (never written anywhere).
CHECK_MODE_SECRET = "(generated-on-apply)"
PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_ALPHABET = string.ascii_letters + string.digits


class Host(Protocol):
    check_mode: bool

    def run_command(self, args: Sequence[str], **kwargs: Any) -> Tuple[int, str, str]: ...

    def fail_json(self, msg: str, **kwargs: Any) -> Any: ...


class HostError(Exception):
    """Something on the host is not as the component needs it; ``field`` names the input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__("%s: %s" % (field_name, message))
        self.field = field_name


@dataclass
class Report:
    """What a converge changed; ``restart`` collects changes the running service must see."""

    changes: List[str] = field(default_factory=list)
    diffs: List[Dict[str, str]] = field(default_factory=list)
    restart_reasons: List[str] = field(default_factory=list)
    digests: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def uid_of(owner: str) -> int:
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise HostError("owner", "no user %r on the host" % owner) from None


def gid_of(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise HostError("group", "no group %r on the host" % group) from None


def attributes_differ(path: str, own: Ownership) -> bool:
    st = os.lstat(path)
    return (st.st_uid != uid_of(own.owner) or st.st_gid != gid_of(own.group)
            or stat.S_IMODE(st.st_mode) != int(own.mode, 8))


def apply_attributes(path: str, own: Ownership) -> None:
    os.chown(path, uid_of(own.owner), gid_of(own.group))
    os.chmod(path, int(own.mode, 8))


def ensure_directory(host: Host, directory: Directory, report: Report) -> None:
    path = directory.path
    if os.path.isdir(path) and not os.path.islink(path):
        if attributes_differ(path, directory.own):
            report.changes.append("directory %s: owner/mode" % path)
            if not host.check_mode:
                apply_attributes(path, directory.own)
        return
    if os.path.lexists(path):
        raise HostError("directories", "%s exists and is not a directory" % path)
    report.changes.append("directory %s: created" % path)
    if not host.check_mode:
        os.makedirs(path, exist_ok=True)
        apply_attributes(path, directory.own)


def generate_secret(fmt: str, length: int) -> str:
    if fmt == "synapse_signing_key":
        seed = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        key_id = "a_" + "".join(secrets.choice(_ALPHABET) for _position in range(4))
        return "ed25519 %s %s" % (key_id, seed)
    return "".join(secrets.choice(_ALPHABET) for _position in range(length))


def _write_private(path: str, data: bytes, own: Ownership) -> None:
    """Write atomically; the temporary file is 0600 from the start, so nothing leaks."""
    directory = os.path.dirname(path)
    fd, tmp_path = tempfile.mkstemp(prefix=".hearth-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        apply_attributes(tmp_path, own)
        os.rename(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def ensure_secret(host: Host, secret: Secret, report: Report) -> None:
    """Create the secret once; an existing one is kept whatever it holds."""
    if os.path.isdir(secret.path):
        raise HostError("secrets", "%s is a directory, where a secret file belongs; remove it" % secret.path)
    if os.path.lexists(secret.path):
        if attributes_differ(secret.path, secret.own):
            report.changes.append("secret %s: owner/mode" % secret.path)
            if not host.check_mode:
                apply_attributes(secret.path, secret.own)
        return
    report.changes.append("secret %s: generated" % secret.path)
    report.diffs.append({"before_header": secret.path, "after_header": secret.path, "before": "",
                         "after": "(new %s secret, value not shown)\n" % secret.format})
    if not host.check_mode:
        if not os.path.isdir(os.path.dirname(secret.path)):
            raise HostError("secrets", "directory of %s does not exist" % secret.path)
        _write_private(secret.path, (generate_secret(secret.format, secret.length) + "\n").encode("ascii"), secret.own)


def read_secret(host: Host, path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        if host.check_mode:
            return CHECK_MODE_SECRET
        raise HostError("files", "the secret %s a file refers to does not exist" % path) from None


def check_sources(files: Sequence[File]) -> None:
    """Files copied from the host must be there (and be PEM where asked) before anything changes."""
    for item in files:
        if item.src is not None and not os.path.isfile(item.src):
            raise HostError(item.label, "%s is not a file on the host" % item.src)
        if item.src is not None and item.pem and not _holds_pem_certificates(item.src):
            raise HostError(item.label, "%s holds no PEM certificate (-----BEGIN CERTIFICATE----- ...)" % item.src)


def _holds_pem_certificates(path: str) -> bool:
    """At least one certificate block, and every block decodes: a service that loads a bad
    CA file fails only later, at start, with an error far from the variable."""
    try:
        with open(path, "r", encoding="ascii") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return False
    blocks = PEM_CERT_RE.findall(text)
    if not blocks:
        return False
    try:
        for block in blocks:
            base64.b64decode("".join(block.split()), validate=True)
    except (ValueError, binascii.Error):
        return False
    return True


def _final_content(host: Host, item: File) -> bytes:
    if item.src is not None:
        try:
            with open(item.src, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise HostError(item.label, "cannot read %s: %s" % (item.src, error.strerror)) from None
    text = SECRET_REF_RE.sub(lambda match: read_secret(host, match.group(1)), item.content or "")
    if "@@hearth-secret:" in text:
        raise HostError("files", "%s names a secret by a path that is not absolute" % item.path)
    return text.encode("utf-8")


def _read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def ensure_file(host: Host, item: File, report: Report) -> None:
    if os.path.isdir(item.path) and not os.path.islink(item.path):
        # Docker creates a directory where a bind-mounted file was missing.
        raise HostError("files", "%s is a directory, where a file belongs; remove it" % item.path)
    data = _final_content(host, item)
    digest = hashlib.sha256(data).hexdigest()
    if item.restart:
        report.digests.append("%s=%s" % (item.path, digest))
    before = _read_bytes(item.path)
    if os.path.islink(item.path):
        before = None
    if before == data:
        if attributes_differ(item.path, item.own):
            report.changes.append("file %s: owner/mode" % item.path)
            if not host.check_mode:
                apply_attributes(item.path, item.own)
        return
    report.changes.append("file %s: %s" % (item.path, "created" if before is None else "updated"))
    if item.restart:
        report.restart_reasons.append(item.path)
    if item.hidden:
        report.diffs.append({"before_header": item.path, "after_header": item.path,
                             "before": "" if before is None else "(content not shown: holds a secret)\n",
                             "after": "(content not shown: holds a secret)\n"})
    else:
        report.diffs.append({"before_header": item.path, "after_header": item.path,
                             "before": (before or b"").decode("utf-8", "replace"),
                             "after": data.decode("utf-8", "replace")})
    if not host.check_mode:
        if not os.path.isdir(os.path.dirname(item.path)):
            raise HostError("files", "directory of %s does not exist" % item.path)
        if os.path.islink(item.path):
            os.unlink(item.path)
        _write_private(item.path, data, item.own)


def ensure_link(host: Host, link: Link, report: Report) -> None:
    if os.path.islink(link.path) and os.readlink(link.path) == link.src:
        return
    report.changes.append("link %s -> %s" % (link.path, link.src))
    if not host.check_mode:
        if os.path.lexists(link.path):
            if os.path.isdir(link.path) and not os.path.islink(link.path):
                raise HostError("links", "%s is a directory" % link.path)
            os.unlink(link.path)
        os.symlink(link.src, link.path)


def _account(user: ServiceUser) -> Tuple[Optional[Tuple[int, int]], Optional[int]]:
    """((uid, primary gid) of the user, gid of the group), None where missing."""
    try:
        entry = pwd.getpwnam(user.name)
        account: Optional[Tuple[int, int]] = (entry.pw_uid, entry.pw_gid)
    except KeyError:
        account = None
    try:
        gid: Optional[int] = grp.getgrnam(user.group).gr_gid
    except KeyError:
        gid = None
    return account, gid


def ensure_service_user(host: Host, sysusers: Optional[str], useradd: Optional[str], groupadd: Optional[str],
                        user: ServiceUser, report: Report) -> None:
    """The account of the containers' uid/gid; declared in sysusers.d where systemd has it."""
    account, gid = _account(user)
    if account is not None and account != (user.uid, user.gid):
        raise HostError("service_user", "user %s exists with uid:gid %d:%d, not %d:%d; change it or the "
                        "configured ids" % (user.name, account[0], account[1], user.uid, user.gid))
    if gid is not None and gid != user.gid:
        raise HostError("service_user", "group %s exists with gid %d, not %d" % (user.group, gid, user.gid))
    if user.sysusers_dir and sysusers:
        drop_in = File(
            path="%s/%s.conf" % (user.sysusers_dir, user.name),
            own=Ownership("root", "root", "0644"),
            content='g %s %d\nu %s %d:%d "hearth.matrix service user" %s /usr/sbin/nologin\n'
                    % (user.group, user.gid, user.name, user.uid, user.gid, user.home),
            restart=False,
        )
        if not os.path.isdir(user.sysusers_dir):
            ensure_directory(host, Directory(user.sysusers_dir, Ownership("root", "root", "0755")), report)
        before = len(report.changes)
        if os.path.isdir(user.sysusers_dir) or not host.check_mode:
            ensure_file(host, drop_in, report)
        if account is None or gid is None or len(report.changes) > before:
            report.changes.append("service user %s: declared with systemd-sysusers" % user.name)
            if not host.check_mode:
                _run(host, [sysusers, drop_in.path])
        return
    if gid is None:
        report.changes.append("group %s: created" % user.group)
        if not host.check_mode:
            _run(host, [groupadd or "groupadd", "--system", "--gid", str(user.gid), user.group])
    if account is None:
        report.changes.append("user %s: created" % user.name)
        if not host.check_mode:
            _run(host, [useradd or "useradd", "--system", "--uid", str(user.uid), "--gid", user.group, "--no-create-home",
                        "--home-dir", user.home, "--shell", "/usr/sbin/nologin", "--comment",
                        "hearth.matrix service user", user.name])


def _run(host: Host, argv: List[str]) -> None:
    rc, out, err = host.run_command(argv)
    if rc != 0:
        raise HostError("service_user", "%s failed: %s" % (" ".join(argv[:2]), (err or out).strip()))
