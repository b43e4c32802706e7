"""Keeps deploy/envoy/envoy.yaml from rotting (no Envoy binary can run here).

Checks what the example promises in docs/GATEWAYS.md: the ext_authz filter
(V3 transport, failure_mode_allow false, an error status, before the router,
sending the headers Scopekeeper reads) calls a cluster that speaks HTTP/2; every virtual host either names an API of
the example policies in its context_extensions or is a host those policies
select an API for; the per-route config is keyed by the filter's name.

Under Bazel (//tests/gateway:envoy_config_test) the paths come from SK_*
variables; from a checkout: /usr/bin/python3 -m unittest tests/gateway/envoy_config_test.py
"""

import json
import os
import unittest

import yaml

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY_YAML = os.environ.get("SK_ENVOY_YAML") or os.path.join(_REPO, "deploy/envoy/envoy.yaml")
POLICIES = [os.environ.get("SK_POLICY_FILE") or os.path.join(_REPO, "examples/policies/rxscale.json"),
            os.environ.get("SK_MAXCARE_POLICY_FILE") or os.path.join(
                _REPO, "examples/policies/maxcare.json")]
EXT_AUTHZ = "envoy.filters.http.ext_authz"


class EnvoyConfigTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(ENVOY_YAML) as f:
            cls.config = yaml.safe_load(f)
        cls.apis = {}
        for path in POLICIES:
            with open(path) as f:
                for api in json.load(f)["apis"]:
                    cls.apis[api["name"]] = api
        listener = cls.config["static_resources"]["listeners"][0]
        cls.hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        cls.clusters = {c["name"]: c for c in cls.config["static_resources"]["clusters"]}

    def test_ext_authz_filter_fails_closed_over_v3_grpc_http2(self):
        filters = self.hcm["http_filters"]
        names = [f["name"] for f in filters]
        self.assertLess(names.index(EXT_AUTHZ), names.index("envoy.filters.http.router"))
        authz = filters[names.index(EXT_AUTHZ)]["typed_config"]
        self.assertEqual(authz["@type"], "type.googleapis.com/"
                         "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
        self.assertEqual(authz["transport_api_version"], "V3")
        self.assertIs(authz["failure_mode_allow"], False)
        self.assertEqual(authz["status_on_error"]["code"], "ServiceUnavailable")
        cluster = self.clusters[authz["grpc_service"]["envoy_grpc"]["cluster_name"]]
        options = cluster["typed_extension_protocol_options"][
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        self.assertIn("http2_protocol_options", options["explicit_http_config"])

    def test_ext_authz_sends_the_headers_scopekeeper_reads(self):
        # The --gateway_key_header, --gateway_organization_header and
        # --gateway_trace_header defaults (server/gateway/gateway.h), plus
        # Authorization: a header missing here never reaches Check.
        filters = self.hcm["http_filters"]
        authz = filters[[f["name"] for f in filters].index(EXT_AUTHZ)]["typed_config"]
        patterns = authz["allowed_headers"]["patterns"]
        self.assertEqual(sorted(p["exact"] for p in patterns),
                         ["authorization", "x-api-key", "x-organization-id", "x-request-id"])

    def test_every_virtual_host_has_an_api(self):
        hosts = {h for api in self.apis.values() for h in api.get("hosts", [])}
        for vhost in self.hcm["route_config"]["virtual_hosts"]:
            for route in vhost["routes"]:
                self.assertIn(route["route"]["cluster"], self.clusters)
                per_filter = route.get("typed_per_filter_config", {})
                if per_filter:
                    self.assertEqual(list(per_filter), [EXT_AUTHZ])
                    api = per_filter[EXT_AUTHZ]["check_settings"]["context_extensions"]["api"]
                    self.assertIn(api, self.apis, vhost["name"])
                else:
                    for domain in vhost["domains"]:
                        self.assertIn(domain, hosts, "%s: no API of the example policies "
                                      "is selected for it" % vhost["name"])


if __name__ == "__main__":
    unittest.main()
