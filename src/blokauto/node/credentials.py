"""Credentials of a local network: a certificate authority for TLS, and one NATS nkey per user.

``blokauto network up`` makes them once, under ``BASE/tls/`` and in each organisation's folder:

- a local CA (EC P-256, ten years), and one server certificate it signs for ``127.0.0.1`` and
  ``localhost`` that every NATS server presents to clients and to the other servers (routes use
  mutual TLS with it: the certificate is valid for server and client authentication);
- a NATS user nkey (Ed25519) per organisation and one for the operator: the servers hold only the
  public keys, and each seed stays in one file of mode 0600 where its holder reads it.

In production the consortium's own CA (or a public one) issues the certificates and each
organisation makes its nkey (``nk -gen user``) or receives JWT credentials; see docs/network.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server.key"


def new_user_seed() -> bytes:
    """A fresh NATS user nkey seed (``SU...``)."""
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)


def public_nkey(seed: bytes) -> str:
    """The public key (``U...``) of a user seed, as the server configuration names it."""
    return nkeys.from_seed(bytearray(seed.strip())).public_key.decode()


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read (created so, never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def make_local_ca(folder: Path, *, days: int = 3650) -> None:
    """A CA and a server certificate for 127.0.0.1/localhost, signed by it, as PEM files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "blokauto local network"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "blokauto local network CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "blokauto local network"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    private = dict(encoding=pem, format=serialization.PrivateFormat.PKCS8,
                   encryption_algorithm=serialization.NoEncryption())
    (folder / CA_FILE).write_bytes(ca.public_bytes(pem))
    (folder / SERVER_CERT_FILE).write_bytes(cert.public_bytes(pem))
    write_secret(folder / CA_KEY_FILE, ca_key.private_bytes(**private))
    write_secret(folder / SERVER_KEY_FILE, key.private_bytes(**private))
