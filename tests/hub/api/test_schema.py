"""The OpenAPI document at /v1/schema and the docs page at /v1/docs, served without any CDN."""

import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db


class _AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_the_schema_is_openapi_json_listing_users_me(client):
    response = client.get("/v1/schema")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/v1/users/me" in schema["paths"]
    assert "get" in schema["paths"]["/v1/users/me"]
    assert "/v1/search" in schema["paths"]
    assert not [path for path in schema["paths"] if "{format}" in path]  # the .json twins are not listed


def test_the_schema_documents_the_user_fields_and_the_oauth_scopes(client):
    schema = client.get("/v1/schema").json()
    user = schema["components"]["schemas"]["CurrentUser"]["properties"]
    assert {"username", "name", "email", "groups", "permissions", "is_staff"} <= set(user)
    assert user["date_joined"]["format"] == "date-time"
    oauth = schema["components"]["securitySchemes"]["oauth2"]
    scopes = next(iter(oauth["flows"].values()))["scopes"]
    assert {"users:read", "events:write", "read", "write"} <= set(scopes)


def test_the_docs_page_loads_only_local_static_assets(client):
    response = client.get("/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    collector = _AssetCollector()
    collector.feed(html)
    assert collector.urls, "the page references no asset at all"
    for url in collector.urls:
        assert url.startswith("/static/") or url.startswith("/v1/"), url
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    # Nor in inline script: no absolute URL to another host anywhere on the page.
    assert not re.search(r"https?://(?!testserver)", html)


def test_the_docs_page_assets_are_served_by_the_hub(client):
    html = client.get("/v1/docs").content.decode()
    collector = _AssetCollector()
    collector.feed(html)
    for url in collector.urls:
        if url.startswith("/static/"):
            response = client.get(url)
            assert response.status_code == 200, url
            response.close()


def test_the_docs_page_points_at_the_schema(client):
    html = client.get("/v1/docs").content.decode()
    assert "/v1/schema" in html


@pytest.mark.urls("tests.hub.api.resource_urls")
def test_a_resource_built_on_the_layer_documents_its_list_conventions(client):
    paths = client.get("/v1/schema").json()["paths"]
    list_params = {parameter["name"] for parameter in paths["/v1/beats"]["get"]["parameters"]}
    assert {"limit", "offset", "since", "until", "interval"} <= list_params
    count_params = {parameter["name"] for parameter in paths["/v1/beats/count"]["get"]["parameters"]}
    assert {"since", "until", "interval"} <= count_params
    assert "/v1/beats/{name}/silence" in paths
    page = paths["/v1/beats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["$ref"].endswith("PaginatedBeatList")


def test_every_operation_documents_the_error_body_and_its_scope(client):
    schema = client.get("/v1/schema").json()
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"message", "more_info"}
    me = schema["paths"]["/v1/users/me"]["get"]
    for status in ("400", "401", "403", "406", "500"):
        assert me["responses"][status]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    assert {"oauth2": ["users:read"]} in me["security"]
    assert {"cookieAuth": []} in me["security"]
    assert "fields" in {parameter["name"] for parameter in me["parameters"]}


@pytest.mark.urls("tests.hub.api.resource_urls")
def test_fields_and_scopes_are_documented_where_they_apply(client):
    paths = client.get("/v1/schema").json()["paths"]
    assert "fields" in {parameter["name"] for parameter in paths["/v1/beats"]["get"]["parameters"]}
    assert "fields" not in {parameter["name"] for parameter in paths["/v1/beats/count"]["get"]["parameters"]}
    assert {"oauth2": ["events:write"]} in paths["/v1/beats"]["post"]["security"]
    assert "415" in paths["/v1/beats"]["post"]["responses"]
    assert "404" in paths["/v1/beats/{name}"]["get"]["responses"]


def test_the_api_root_links_to_what_describes_the_api(client):
    links = client.get("/v1/").json()
    assert links["schema"] == "http://testserver/v1/schema"
    assert links["docs"] == "http://testserver/v1/docs"
    assert links["errors"] == "http://testserver/v1/docs/errors"
    assert links["token"] == "http://testserver/o/token/"
    for url in links.values():
        if "/o/" not in url:
            assert client.get(url).status_code in (200, 400, 401), url  # search needs q, me a caller
