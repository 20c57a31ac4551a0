"""Security-related topology input (issue 6): secrets are named, never written; policy
knobs that make no sense; an exit nobody can provide. Every error is located, has a fix,
and never repeats what may be a secret."""

from __future__ import annotations

import pytest

from topogen import keypair, pub
from wgbgp.model import TopologyError, parse

BASE = f"""\
network:
  name: friends
  overlay: 10.0.0.0/24
hubs:
  vps:
    endpoint: 203.0.113.10:51820
    public_key: {pub("vps")}
nodes:
  laptop:
    asn: 65010
    public_key: {pub("laptop")}
    announce: [100.100.100.1/32]
  friend:
    asn: 65020
    public_key: {pub("friend")}
    announce: [100.100.2.0/24]
"""


def with_(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def net(extra: str) -> str:
    return with_("  overlay: 10.0.0.0/24\n", "  overlay: 10.0.0.0/24\n" + extra)


def errors(text: str) -> list:
    with pytest.raises(TopologyError) as exc:
        parse(text, "topo.yaml")
    return exc.value.issues


def warnings(text: str) -> list:
    return parse(text, "topo.yaml")[1]


SECRET = "Tr0ub4dor&3-horse-battery"


@pytest.mark.parametrize("value", [
    SECRET,                       # the password itself
    f'"{SECRET}"',
    keypair("x")[0],              # a key pasted in
    f"{{file: {SECRET}}}",        # a bare word where a path belongs
    f"{{env: {SECRET}}}",         # not a variable name
    f"{{password: {SECRET}}}",    # an unknown key holding it
    f"{{env: X, file: /x/{SECRET}}}",
    "{}",
    "12345678",
])
@pytest.mark.parametrize("field", ["bgp_password", "preshared_key"])
def test_a_secret_in_the_topology_is_an_error_that_does_not_repeat_it(field, value):
    text = net(f"  {field}: {value}\n")
    (issue,) = errors(text)
    assert issue.field == f"network.{field}" and issue.line == 4 and issue.fix
    assert SECRET not in issue.format() and keypair("x")[0] not in issue.format()
    assert "12345678" not in issue.format()


@pytest.mark.parametrize("value,kind,name", [
    ('{file: "/etc/wgbgp/bgp-{pair}.secret"}', "file", "/etc/wgbgp/bgp-friend-laptop.secret"),
    ("{file: ./md5.secret}", "file", "./md5.secret"),
    ('{env: "WGBGP_MD5_{pair}"}', "env", "WGBGP_MD5_FRIEND_LAPTOP"),
    ("\n    env: WGBGP_MD5_{pair}", "env", "WGBGP_MD5_FRIEND_LAPTOP"),  # block style: no quotes
    ("\n    env: WGBGP_MD5", "env", "WGBGP_MD5"),
])
def test_secrets_are_named_by_file_or_environment(value, kind, name):
    topology, _ = parse(net(f"  bgp_password: {value}\n"))
    assert topology.network.bgp_password.for_pair("laptop", "friend") == (kind, name)


def test_one_secret_for_everyone_is_a_warning():
    (w,) = warnings(net("  preshared_key: {env: WGBGP_PSK}\n"))
    assert w.field == "network.preshared_key" and "{pair}" in w.fix
    assert warnings(net('  preshared_key: {env: "WGBGP_PSK_{pair}"}\n')) == []


def test_password_in_ssh_target():
    (issue,) = errors(with_("    public_key: " + pub("vps") + "\n",
                            "    public_key: " + pub("vps") + f"\n    ssh: root:{SECRET}@vps\n"))
    assert issue.field == "hubs.vps.ssh" and SECRET not in issue.format()
    parse(with_("    public_key: " + pub("vps") + "\n",
                "    public_key: " + pub("vps") + "\n    ssh: root@vps.example.net\n"))


def test_private_key_pasted_as_public_key():
    text = with_(f"    public_key: {pub('laptop')}\n", f"    public_key: {keypair('vps')[0]}\n")
    (issue,) = errors(text)
    assert issue.field == "nodes.laptop.public_key" and "PRIVATE" in issue.message


def test_more_specifics():
    topology, _ = parse(with_("    announce: [100.100.2.0/24]\n",
                              "    announce: [100.100.2.0/24]\n    more_specifics: 26\n"))
    assert topology.nodes["friend"].more_specifics == 26
    (issue,) = errors(with_("    announce: [100.100.2.0/24]\n",
                            "    announce: [100.100.2.0/24]\n    more_specifics: 20\n"))
    assert issue.field == "nodes.friend.more_specifics" and "100.100.2.0/24" in issue.message
    (issue,) = errors(with_("    announce: [100.100.2.0/24]\n",
                            "    announce: [100.100.2.0/24]\n    more_specifics: 33\n"))
    assert issue.field == "nodes.friend.more_specifics"


def test_max_prefixes_below_what_is_announced():
    (issue,) = errors(with_("    announce: [100.100.100.1/32]\n",
                            "    announce: [100.100.100.1/32, 100.100.100.3/32]\n"
                            "    max_prefixes: 1\n"))
    assert issue.field == "nodes.laptop.max_prefixes" and "at least 2" in issue.fix


def test_prefix_declared_by_two_nodes():
    (issue,) = errors(with_("    announce: [100.100.2.0/24]\n",
                            "    announce: [100.100.2.0/24, 100.100.100.1/32]\n"))
    assert issue.field == "nodes.friend.announce.1" and "laptop" in issue.message


def test_exit_without_a_hub_that_provides_it():
    asked = with_("    announce: [100.100.100.1/32]\n",
                  "    announce: [100.100.100.1/32]\n    exit: true\n")
    (issue,) = errors(asked)
    assert issue.field == "nodes.laptop.exit" and "no hub provides" in issue.message
    assert "exit: true" in issue.fix
    offered = asked.replace("    endpoint: 203.0.113.10:51820\n",
                            "    endpoint: 203.0.113.10:51820\n    exit: true\n")
    assert warnings(offered) == []
    (w,) = warnings(with_("    endpoint: 203.0.113.10:51820\n",
                          "    endpoint: 203.0.113.10:51820\n    exit: true\n"))
    assert w.field == "hubs.vps.exit"


def test_private_key_anywhere_in_the_text_even_a_comment():
    private = keypair("laptop")[0]
    for text in (BASE.replace("nodes:\n", f"nodes:\n  # laptop's key: {private}\n"),
                 BASE + f"# {private}\n",
                 BASE.replace("    asn: 65020\n", f"    asn: 65020   # {private}\n")):
        (issue,) = errors(text)
        assert "PRIVATE key of laptop" in issue.message and issue.line
        assert private not in issue.format()
    # A public key in a comment is fine.
    parse(BASE + f"# vps: {pub('vps')}\n")


@pytest.mark.parametrize("pasted", [
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    f"PrivateKey = {keypair('zz')[0]}",
    "presharedkey=abc",
])
def test_pasted_private_material(pasted):
    (issue,) = errors(BASE + f"# {pasted}\n")
    assert issue.line == BASE.count("\n") + 1 and "private key material" in issue.message
    assert keypair("zz")[0] not in issue.format()
