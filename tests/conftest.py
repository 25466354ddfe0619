"""Shared test helpers live in this folder (secret_search.py, cli_state.py): pytest puts the
folder of this file on sys.path to import it, so the tests of every subfolder can import them."""
