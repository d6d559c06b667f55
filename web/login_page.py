"""The HTML of the login page: plain, small, in the same grey look as the HMI."""
from __future__ import annotations

from html import escape


def login_page_html(site_name: str, next_path: str = "/", message: str = "", user_name: str = "") -> str:
    notice = f'<p class="sl-login-message" role="alert">{escape(message)}</p>' if message else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in - {escape(site_name)}</title>
<link rel="stylesheet" href="/assets/stacklight.css">
</head>
<body class="sl-login-body">
<main class="sl-login-card">
  <div class="sl-login-brand">STACKLIGHT</div>
  <h1 class="sl-login-site">{escape(site_name)}</h1>
  {notice}
  <form method="post" action="/login" class="sl-login-form" autocomplete="on">
    <input type="hidden" name="next" value="{escape(next_path, quote=True)}">
    <label for="sl-login-user">User name</label>
    <input id="sl-login-user" name="username" type="text" value="{escape(user_name, quote=True)}"
           autocomplete="username" autofocus required maxlength="64">
    <label for="sl-login-password">Password</label>
    <input id="sl-login-password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit" class="sl-button sl-button-primary">Log in</button>
  </form>
  <p class="sl-login-footnote">Authorised personnel only. Logins are recorded.</p>
</main>
</body>
</html>
"""
