"""`secrets`: the command-line client of the Vault and the Secrets Manager (click).

    secrets login                      a token (password grant or client credentials), cached 0600
    secrets whoami, secrets roles      who the token says you are; the roles the Vault knows
    secrets get/put/patch/set-roles/list/search/delete   shared (or --personal) secrets
    secrets versions history|get|metadata|delete|undelete|destroy
    secrets versions list|schedule-destroy|cancel-destroy, secrets put --generate   (versions.py)
    secrets accounts                   account secrets you may check out
    secrets checkouts list|create|show|release

Modules: session (login, token cache, HTTP and its errors), values (@file, -, key=value),
output (json, table, yaml), main (the commands).
"""
