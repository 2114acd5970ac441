-- A storm of logins (argon2id each): the same valid form, posted again and again.
wrk.method = "POST"
wrk.body = os.getenv("OBOLE_BENCH_LOGIN_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("OBOLE_BENCH_LOGIN_COOKIE")
