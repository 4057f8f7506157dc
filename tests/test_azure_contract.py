"""The backend contract over HTTP: AzureSessionsBackend talking to ``codeinterp serve`` on 127.0.0.1, once per
wire dialect (legacy 2024-02-02-preview and current 2025-10-02-preview)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from backend_contract import BackendContract
from pool_server import running_pool_server

from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend

TOKEN = "contract-token"


@pytest.fixture(scope="module")
def pool_url() -> Iterator[str]:
    with running_pool_server(token=TOKEN, cooldown=600) as url:
        yield url


def _backend(url: str, api_version: str) -> Iterator[AzureSessionsBackend]:
    backend = AzureSessionsBackend(url, api_version=api_version, token_provider=lambda: TOKEN, timeout=60)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def legacy_backend(pool_url: str) -> Iterator[AzureSessionsBackend]:
    yield from _backend(pool_url, "2024-02-02-preview")


@pytest.fixture(scope="module")
def current_backend(pool_url: str) -> Iterator[AzureSessionsBackend]:
    yield from _backend(pool_url, "2025-10-02-preview")


def _needs_full_results(backend: AzureSessionsBackend, test: Callable[[], None]) -> None:
    """Run a contract test that needs more than Azure's wire format carries.

    The Azure response has stdout, stderr and one JSON ``result``: no display outputs (HTML, JSON, SVG), no
    ``text/html`` of a DataFrame, and a tuple arrives as a JSON list. ``codeinterp serve`` can add the full
    result of a run under the additive ``codeinterp`` key (see /work/shared/notes/azure-client-wire-extensions.md),
    and then these tests hold strictly. Until the server sends it they are expected failures, not skipped.
    """
    try:
        test()
    except AssertionError:
        if backend.service_sends_full_results:
            raise
        pytest.xfail("the server does not send the full run result (additive 'codeinterp' key) yet")


class _AzureContract(BackendContract):
    def test_rich_outputs_are_captured(self, backend: AzureSessionsBackend) -> None:
        _needs_full_results(backend, lambda: super(_AzureContract, self).test_rich_outputs_are_captured(backend))

    def test_dataframe_result_has_html_and_text(self, backend: AzureSessionsBackend) -> None:
        _needs_full_results(
            backend, lambda: super(_AzureContract, self).test_dataframe_result_has_html_and_text(backend)
        )

    def test_absolute_mnt_data_paths_work_in_code(self, backend: AzureSessionsBackend) -> None:
        _needs_full_results(
            backend, lambda: super(_AzureContract, self).test_absolute_mnt_data_paths_work_in_code(backend)
        )


class TestAzureLegacyContract(_AzureContract):
    @pytest.fixture
    def backend(self, legacy_backend: AzureSessionsBackend) -> AzureSessionsBackend:
        return legacy_backend


class TestAzureCurrentContract(_AzureContract):
    @pytest.fixture
    def backend(self, current_backend: AzureSessionsBackend) -> AzureSessionsBackend:
        return current_backend
