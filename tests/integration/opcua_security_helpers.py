"""A secured asyncua server for the OPC UA security tests: its own certificate, every policy, one user."""
from __future__ import annotations

import socket
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from data_sources.opcua_security import load_certificate, thumbprint_sha256
from launcher.embedded_servers import free_port

NAMESPACE = "urn:stacklight:test-secure-plant"
SERVER_URI = "urn:stacklight:test-secure-server"
USERNAME, PASSWORD = "operator", "s3cret"
LEVEL = 3.25

SECURED_ENDPOINTS = [
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
]


class OnlyTheOperator:
    """The server's user manager: one user name and password, nobody else."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        return User(role=UserRole.User) if (username, password) == (USERNAME, PASSWORD) else None


class SecurePlantServer:
    """Secured endpoints only (three policies x Sign / SignAndEncrypt), username and password."""

    def __init__(self, pki_dir: Path, policies: list[ua.SecurityPolicyType] = SECURED_ENDPOINTS) -> None:
        self.policies = policies
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/secure"
        self.cert_file = pki_dir / "server_cert.der"
        self.key_file = pki_dir / "server_key.pem"
        self.server = Server(user_manager=OnlyTheOperator())
        self.level_node: ua.NodeId | None = None

    async def start(self) -> SecurePlantServer:
        if not (self.cert_file.is_file() and self.key_file.is_file()):  # else: a certificate the test issued
            await cert_gen.setup_self_signed_certificate(
                self.key_file, self.cert_file, SERVER_URI, socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH], {})
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy(self.policies)
        self.server.set_identity_tokens([ua.UserNameIdentityToken])
        await self.server.set_application_uri(SERVER_URI)
        await self.server.load_certificate(str(self.cert_file))
        await self.server.load_private_key(str(self.key_file))
        index = await self.server.register_namespace(NAMESPACE)
        node = await self.server.nodes.objects.add_variable(ua.NodeId("Test.Level", index), "Level", LEVEL)
        self.level_node = node.nodeid
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def thumbprint(self) -> str:
        return thumbprint_sha256(load_certificate(self.cert_file.read_bytes()))

    async def set_level(self, value: float) -> None:
        await self.server.write_attribute_value(self.level_node, ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
