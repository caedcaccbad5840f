"""Crawling shops with headless Chromium through Selenium, driven by declarative shop specs."""
