"""Full ID numbers never reach the logs, whoever logs them."""

from __future__ import annotations

import logging

import pytest

from dancu.core.logs import MaskingFilter


def test_masking_filter_rewrites_messages_and_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("dancu.test.masking")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="dancu.test.masking"):
        logger.info("lookup %s from %s", "001090012345", "10.0.0.1")
        logger.info('"GET /api/v1/persons/079203001122 HTTP/1.1" 200')
    text = caplog.text
    assert "001090012345" not in text and "0010******45" in text
    assert "079203001122" not in text and "0792******22" in text
    assert "10.0.0.1" in text
