"""Signed bundles: an Ed25519 signature over the manifest, which holds every artifact's sha256.

What is signed, and why two signatures (both in `signature.json` beside manifest.json):

- "manifest_core": the manifest LESS its "packages" key: the model, the schema, every
  artifact with its sha256, golden vectors' hash, parity. This is what the API and the device
  serve from. The edge tarball ships exactly this manifest (a tarball cannot hold its own
  hash, so targets/edge/pack.py drops "packages"), so the device checks this signature only.
- "manifest_full": the whole manifest, "packages" included (web site, report, edge
  tarballs). The build rewrites "packages" after its packers run and `mpgpack edge bundle`
  adds the tarballs later still, so this one goes stale whenever packages are added after
  signing: sign last (`mpgpack publish --sign-key`, or `mpgpack sign` after packing). Signing
  the same model again gives the same "manifest_core" bytes (Ed25519 is deterministic), so a
  tarball packed before a re-sign still verifies.

Each signature is over a canonical JSON serialisation (sorted keys, no spaces, UTF-8), not
the file's bytes: the edge packer re-writes the manifest with other indentation, and the
signature must survive that. Each payload starts with its own label, so a signature over one
payload can never pass for the other. The signature only vouches for the sha256s: the
targets still hash every artifact they load against the signed manifest (core.bundle).

Checking picks the `cryptography` package when it can be imported (build machine, API) and
otherwise the OpenSSL command-line tool (`openssl pkeyutl -verify -rawin`, OpenSSL >= 3.0),
which Raspberry Pi OS has: the device runtime stays numpy + LiteRT + the standard library.
Both check the same signature bytes. This module imports only the standard library at module
level (it is one of the device runner's files, targets/edge/wheel.py).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mpgpack.core.errors import UserError

SIGNATURE_FILE = "signature.json"
SIGNATURE_FORMAT = "mpgpack-signature/1"
ALGORITHM = "Ed25519"
CORE, FULL = "manifest_core", "manifest_full"
LABELS = {CORE: b"mpgpack signed manifest less packages v1\n",
          FULL: b"mpgpack signed whole manifest v1\n"}
COVERS = {CORE: 'manifest.json less "packages" (model, schema, every artifact\'s sha256): '
                'what the API and the device serve from',
          FULL: 'the whole manifest.json, "packages" included (web site, report, edge tarballs)'}
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE, AlgorithmIdentifier
# 1.3.101.112, BIT STRING of 32 bytes. Used to recognise the key file, not to do crypto.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
DEVICE_KEY_FILE = "trust.pub"      # the public key install.sh puts beside the device's bundle
# The one line a reader prints when no key was given: what IS checked, and what is not.
UNVERIFIED = ("signature: not checked, the bundle is used as unsigned (no trusted key given): "
              "every file is checked against the "
              "manifest's sha256s, but nothing vouches for the manifest itself; pass --trust "
              "KEY.pub to require a signature")


# -- what is signed --------------------------------------------------------------------------
def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def core_manifest(manifest: dict) -> dict:
    """The manifest less "packages" (web site, report, edge tarballs): what the API and the
    device serve from, what an edge tarball ships, what the core signature covers."""
    return {k: v for k, v in manifest.items() if k != "packages"}


def payloads(manifest: dict) -> dict[str, bytes]:
    """The bytes each signature is made over, by signature name."""
    return {CORE: LABELS[CORE] + canonical_json(core_manifest(manifest)),
            FULL: LABELS[FULL] + canonical_json(manifest)}


def _read_manifest(bundle_dir: Path) -> dict:
    try:
        return json.loads((bundle_dir / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {bundle_dir / 'manifest.json'}: {exc}") from None


# -- keys ------------------------------------------------------------------------------------
def public_key_der(pem: bytes, where: str) -> bytes:
    """The DER SubjectPublicKeyInfo inside a PEM Ed25519 public key (stdlib parsing only)."""
    text = pem.decode("ascii", errors="replace")
    if "PRIVATE KEY" in text:
        raise UserError(f"{where} is a private key; give the public key (the .pub file that "
                        f"`mpgpack keygen` wrote beside it)")
    begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    if begin not in text or end not in text:
        raise UserError(f"cannot read public key {where}: not a PEM public key "
                        f"(expected a '{begin}' block, as `mpgpack keygen` writes)")
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"cannot read public key {where}: its PEM body is not base64") from None
    if len(der) != len(ED25519_SPKI_PREFIX) + 32 or not der.startswith(ED25519_SPKI_PREFIX):
        raise UserError(f"cannot read public key {where}: not an Ed25519 public key")
    return der


def key_id(der: bytes) -> str:
    """A short name for a public key: the first 16 hex digits of the sha256 of its DER form."""
    return hashlib.sha256(der).hexdigest()[:16]


def _read_key_file(path: Path, kind: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {kind} key {path}: {exc.strerror or exc}") from None


def _require_cryptography(action: str) -> None:
    """Making keys and signatures needs `cryptography` (only checking can fall back to openssl)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise UserError(f"{action} needs the Python package cryptography: pip install "
                        f"'mpgpack[build]' (or cryptography itself)") from None


def generate_keypair(path: str | os.PathLike) -> tuple[Path, Path, str]:
    """Writes PATH (private key, PEM PKCS#8, mode 0600) and PATH.pub; returns (key, pub, id)."""
    _require_cryptography("making a signing key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key_path, pub_path = Path(path), Path(f"{path}.pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise UserError(f"{p} exists; refusing to overwrite a key (remove it first)")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pub = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UserError(f"cannot write {key_path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(pub)
    return key_path, pub_path, key_id(public_key_der(pub, str(pub_path)))


def load_private_key(path: str | os.PathLike):
    """The Ed25519 private key in PATH (PEM, unencrypted); UserError naming what is wrong."""
    _require_cryptography("signing a bundle")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    data = _read_key_file(Path(path), "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"cannot read private key {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"private key {path} is not an Ed25519 key (make one with `mpgpack keygen`)")
    return key


# -- signing ---------------------------------------------------------------------------------
def sign_and_report(bundle_dir: str | os.PathLike, private_key) -> str:
    """Signs the bundle (sign_bundle); returns the line a command prints about it."""
    document = sign_bundle(bundle_dir, private_key)
    return f"signed {Path(bundle_dir) / SIGNATURE_FILE} (Ed25519, key {document['key_id']})"


def sign_bundle(bundle_dir: str | os.PathLike, private_key) -> dict:
    """Signs the bundle's manifest as it is now; writes signature.json; returns its content.

    `private_key` is a path or a key from load_private_key (load it before a long build, so a
    bad key fails first).
    """
    if not hasattr(private_key, "sign"):
        private_key = load_private_key(private_key)
    from cryptography.hazmat.primitives import serialization
    bundle_dir = Path(bundle_dir)
    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    signed = {name: base64.b64encode(private_key.sign(data)).decode()
              for name, data in payloads(_read_manifest(bundle_dir)).items()}
    document = {"format": SIGNATURE_FORMAT, "algorithm": ALGORITHM, "key_id": key_id(der),
                "covers": COVERS, "signatures": signed}
    tmp = bundle_dir / f".{SIGNATURE_FILE}.tmp"
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, bundle_dir / SIGNATURE_FILE)
    return document


def device_signature(bundle_dir: str | os.PathLike) -> dict | None:
    """signature.json as the edge tarball ships it: the "manifest_core" signature only (the
    tarball's manifest has no "packages"), so repacking gives the same bytes. None: unsigned."""
    path = Path(bundle_dir) / SIGNATURE_FILE
    if not path.is_file():
        return None
    document = _read_signature(Path(bundle_dir))
    return {**document, "covers": {CORE: COVERS[CORE]},
            "signatures": {CORE: document["signatures"][CORE]}}


# -- checking --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureCheck:
    key_id: str
    checked: tuple[str, ...]     # signature names that verified
    backend: str                 # "cryptography" or "openssl"

    def line(self) -> str:
        what = "manifest and packages" if FULL in self.checked else "manifest"
        return (f"signature: OK ({ALGORITHM}, key {self.key_id}, covers the {what}; checked "
                f"with {self.backend})")


def _read_signature(bundle_dir: Path) -> dict:
    path = bundle_dir / SIGNATURE_FILE
    if not path.is_file():
        raise UserError(f"bundle {bundle_dir} is not signed (no {SIGNATURE_FILE}); sign it with "
                        f"`mpgpack sign {bundle_dir} --key KEY`, or give no trusted key")
    try:
        document = json.loads(path.read_text())
        if document.get("format") != SIGNATURE_FORMAT or document.get("algorithm") != ALGORITHM:
            raise ValueError(f"format {document.get('format')!r}, algorithm "
                             f"{document.get('algorithm')!r}")
        if not isinstance(document["signatures"][CORE], str) or not isinstance(document["key_id"], str):
            raise ValueError("no manifest_core signature or key_id")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not an {SIGNATURE_FORMAT} {ALGORITHM} signature file "
                        f"({exc})") from None
    return document


def verify_bundle_signature(bundle_dir: str | os.PathLike, public_key_path: str | os.PathLike,
                            manifest: dict | None = None) -> SignatureCheck:
    """Checks signature.json against the trusted public key; raises UserError naming what failed.

    `manifest`: the manifest the caller already read and will serve from (so the one checked
    is the one used); default: read bundle_dir/manifest.json. The "packages" signature is
    checked when the manifest has "packages" (a full bundle); a device's manifest has none.
    """
    bundle_dir = Path(bundle_dir)
    pem = _read_key_file(Path(public_key_path), "public")
    trusted_id = key_id(public_key_der(pem, str(public_key_path)))
    document = _read_signature(bundle_dir)
    if document["key_id"] != trusted_id:
        raise UserError(f"bundle {bundle_dir} is signed by another key (key id "
                        f"{document['key_id']}), not the trusted key {public_key_path} "
                        f"(key id {trusted_id})")
    manifest = manifest if manifest is not None else _read_manifest(bundle_dir)
    wanted = [CORE, FULL] if "packages" in manifest else [CORE]
    if FULL in wanted and FULL not in document["signatures"]:
        raise UserError(f"bundle {bundle_dir}: {SIGNATURE_FILE} does not cover the manifest's "
                        f"packages; sign it again with `mpgpack sign`")
    data = payloads(manifest)
    verify, backend = _backend()
    for name in wanted:
        try:
            signature = base64.b64decode(document["signatures"][name], validate=True)
        except (binascii.Error, ValueError, TypeError):
            signature = b""
        if not verify(pem, Path(public_key_path), data[name], signature):
            raise UserError(_bad_signature_message(bundle_dir, name))
    return SignatureCheck(trusted_id, tuple(wanted), backend)


def _bad_signature_message(bundle_dir: Path, name: str) -> str:
    if name == FULL:
        return (f"bundle {bundle_dir}: bad signature over the manifest's packages (web site, "
                f"report, edge tarballs): they changed after signing, or {SIGNATURE_FILE} is "
                f"damaged; if the packages were added after signing, sign it again with "
                f"`mpgpack sign`")
    return (f"bundle {bundle_dir}: bad signature: manifest.json does not match its signature "
            f"(changed after signing, or {SIGNATURE_FILE} is damaged); refusing it")


def trust_line(bundle_dir: str | os.PathLike, public_key_path: str | os.PathLike | None,
               manifest: dict | None = None) -> str:
    """What a target prints: the check's result line, or that no key was given (the bundle is
    then used unverified, as before signing existed). Raises UserError on a failed check."""
    if public_key_path is None:
        return UNVERIFIED
    return verify_bundle_signature(bundle_dir, public_key_path, manifest).line()


# -- the two ways to check an Ed25519 signature ------------------------------------------------
def _backend():
    """(verify function, name): `cryptography` when importable, else the openssl CLI."""
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: F401
    except ImportError:
        return _verify_with_openssl, "openssl"
    return _verify_with_cryptography, "cryptography"


def _verify_with_cryptography(pem: bytes, _path: Path, data: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    try:
        load_pem_public_key(pem).verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _verify_with_openssl(_pem: bytes, path: Path, data: bytes, signature: bytes) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UserError("cannot check the bundle's signature: the openssl command (OpenSSL >= "
                        "3.0) is not installed and neither is the Python package cryptography; "
                        "install one (on Raspberry Pi OS: sudo apt install openssl)")
    with tempfile.TemporaryDirectory(prefix="mpgpack-sig-") as tmp:
        data_file, sig_file = Path(tmp) / "payload", Path(tmp) / "signature"
        data_file.write_bytes(data)
        sig_file.write_bytes(signature)
        try:
            proc = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(path),
                                   "-rawin", "-in", str(data_file), "-sigfile", str(sig_file)],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UserError(f"cannot check the bundle's signature: cannot run {openssl}: "
                            f"{exc}") from None
    if proc.returncode == 0 and "Signature Verified Successfully" in proc.stdout:
        return True
    if "Signature Verification Failure" in proc.stdout + proc.stderr:
        return False             # (OpenSSL 3.5, on trixie, adds an error line on stderr)
    detail = (proc.stderr.strip().splitlines() or ["no output"])[0]
    if "rawin" in proc.stderr:
        raise UserError(f"cannot check the bundle's signature: {openssl} is older than OpenSSL "
                        f"3.0 (it has no -rawin): {detail}")
    # A wrong-length signature also ends here with OpenSSL's own error line.
    if len(signature) != 64:
        return False
    raise UserError(f"cannot check the bundle's signature with {openssl}: {detail}")
