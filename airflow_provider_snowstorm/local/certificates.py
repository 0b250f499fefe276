"""A throw-away certificate authority and server certificate for the local Snowflake emulation.

The stock Snowflake connector only speaks HTTPS, so the emulator needs a certificate the client trusts. We mint a
one-off CA, sign a ``localhost``/``127.0.0.1`` server certificate with it and discard the CA key: the CA can then
never sign anything else, and clients trust exactly this server through a CA bundle.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
BUNDLE_FILE = "ca-bundle.pem"
VALIDITY = dt.timedelta(days=3650)
SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Where the emulator's TLS material lives.

    ``bundle`` is what clients should trust: the local CA followed by the public CAs (certifi), so that pointing
    ``REQUESTS_CA_BUNDLE`` at it does not break HTTPS to real services (W&B, Slack) in the same process.
    """

    ca: Path
    cert: Path
    key: Path
    bundle: Path


def tls_files(directory: Path) -> TlsFiles:
    """The TLS file locations under ``directory`` (nothing is created)."""
    return TlsFiles(
        ca=directory / CA_FILE,
        cert=directory / CERT_FILE,
        key=directory / KEY_FILE,
        bundle=directory / BUNDLE_FILE,
    )


def ensure_certificates(directory: Path) -> TlsFiles:
    """Create the CA, server certificate, key and bundle once; later calls reuse them."""
    files = tls_files(directory)
    if not (files.ca.is_file() and files.cert.is_file() and files.key.is_file()):
        directory.mkdir(parents=True, exist_ok=True)
        ca_pem, cert_pem, key_pem = _mint_server_certificate(SERVER_NAMES)
        files.ca.write_bytes(ca_pem)
        files.cert.write_bytes(cert_pem)
        _write_private(files.key, key_pem)
    if not files.bundle.is_file():
        files.bundle.write_bytes(files.ca.read_bytes() + b"\n" + _public_ca_bundle(files.bundle))
    return files


def _mint_server_certificate(names: tuple[str, ...]) -> tuple[bytes, bytes, bytes]:
    """Return PEM bytes of (CA certificate, server certificate, server private key)."""
    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(minutes=5)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Snowstorm local emulator CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
    )


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only (the server's private key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def _public_ca_bundle(own_bundle: Path) -> bytes:
    """The CAs this process already trusts: the bundle named by ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` (a
    corporate proxy's CA lives there), else certifi's public CAs, or nothing when certifi is absent.

    Pointing ``REQUESTS_CA_BUNDLE`` at our CA alone would break HTTPS to W&B or Slack in the same process.
    """
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        trusted = os.environ.get(variable)
        if trusted and Path(trusted).is_file() and Path(trusted).resolve() != own_bundle.resolve():
            return Path(trusted).read_bytes()
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with requests
        return b""
    return Path(certifi.where()).read_bytes()
