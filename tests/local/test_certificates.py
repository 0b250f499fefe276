from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_provider_snowstorm.local.certificates import ensure_certificates


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)

    names = _load(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)


def test_server_certificate_is_signed_by_the_local_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    ca, server = _load(files.ca), _load(files.cert)

    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_key_is_owner_only_and_no_ca_key_is_kept(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)

    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir() if b"PRIVATE KEY" in path.read_bytes()] == [
        files.key.name
    ]


def test_certificates_are_created_once(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    before = first.cert.read_bytes()

    second = ensure_certificates(tmp_path)

    assert second.cert.read_bytes() == before


@pytest.mark.filterwarnings("ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning")
def test_bundle_trusts_the_local_ca_and_public_cas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    files = ensure_certificates(tmp_path)

    bundle = x509.load_pem_x509_certificates(files.bundle.read_bytes())
    assert bundle[0] == _load(files.ca)
    assert len(bundle) > 50


def test_server_key_matches_certificate(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    files = ensure_certificates(tmp_path)
    key = load_pem_private_key(files.key.read_bytes(), password=None)

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == _load(files.cert).public_key()


def test_bundle_keeps_the_cas_the_environment_already_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_ca = ensure_certificates(tmp_path / "proxy").ca  # any CA stands in for a corporate proxy's
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(proxy_ca))

    files = ensure_certificates(tmp_path / "local")

    bundle = x509.load_pem_x509_certificates(files.bundle.read_bytes())
    assert bundle == [_load(files.ca), _load(proxy_ca)]
