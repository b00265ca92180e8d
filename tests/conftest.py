"""Plugins every test module can use (pyproject's addopts loads ``tests.fix_pg``)."""

pytest_plugins = ["tests.fix_s3", "tests.fake_do", "tests.fix_sshd"]
