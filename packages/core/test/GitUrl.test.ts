import { describe, expect, it } from "@effect/vitest"
import { GitUrl } from "@kiln/core"
import fc from "fast-check"

const orLocal = `${GitUrl.expected}, or a local repository in a directory this server allows`

describe("GitUrl.check", () => {
  it.each([
    "https://github.com/acme/web.git",
    "https://user:token@git.example.com/acme/web.git",
    "http://127.0.0.1:8080/acme/web",
    "https://[::1]:8443/r.git",
    "ssh://git@github.com/acme/web.git",
    "ssh://git.example.com:2222/srv/r.git",
    "git@github.com:acme/web.git",
    "deploy.bot@git.example.com:/srv/r.git"
  ])("accepts the remote %s", (url) => {
    expect(GitUrl.check(url)).toBeUndefined()
    expect(GitUrl.check(url, ["/srv/repos"])).toBeUndefined()
  })

  it.each([
    ["an absolute path", "/srv/repos/web"],
    ["the root", "/"],
    ["a relative path", "srv/repos/web"],
    ["a dot path", "./web"],
    ["a parent path", "../web"],
    ["a home path", "~/web"],
    ["a file URL", "file:///srv/repos/web"],
    ["a file URL with a host", "file://localhost/srv/repos/web"],
    ["a remote helper", "ext::sh -c touch% /tmp/pwned"],
    ["a remote helper without spaces", "fd::3"],
    ["an https helper", "https::example.com/r.git"],
    ["an option", "--upload-pack=touch /tmp/pwned"],
    ["a short option", "-u"],
    ["an option after a URL", "https://example.com/r.git --upload-pack=id"],
    ["a newline", "https://example.com/r.git\n--upload-pack=id"],
    ["a NUL", "https://example.com/r\u0000.git"],
    ["an upper-case scheme", "HTTPS://example.com/r.git"],
    ["git://", "git://example.com/r.git"],
    ["ftp://", "ftp://example.com/r.git"],
    ["git+ssh://", "git+ssh://example.com/r.git"],
    ["no host", "https:///r.git"],
    ["a backslash", "https://example.com\\@evil.example/r.git"],
    ["nothing after the scheme", "https://"],
    ["an ssh host that is an option", "ssh://-oProxyCommand=id/r.git"],
    ["an ssh user that is an option", "ssh://-oProxyCommand=id@example.com/r.git"],
    ["an scp-like host that is an option", "git@-oProxyCommand=id:r.git"],
    ["an scp-like user that is an option", "-oProxyCommand=id@example.com:r.git"],
    ["an scp-like path that is an option", "git@example.com:--upload-pack=id"],
    ["host:path without a user", "example.com:acme/web.git"],
    ["a slash before the colon", "git@example.com/acme:web.git"],
    ["nothing", ""],
    ["too long", `https://example.com/${"a".repeat(2048)}`]
  ])("refuses %s, the same with or without local directories", (_, url) => {
    expect(GitUrl.check(url)).toBe(GitUrl.expected)
    expect(GitUrl.check(url, ["/elsewhere"])).toBe(orLocal)
  })

  it("takes a local repository at or below an allowed directory, by path or file:/// URL", () => {
    const allowed = ["/srv/repos", "/home/ci/checkouts/"]
    for (const url of [
      "/srv/repos",
      "/srv/repos/web",
      "/srv/repos/web/",
      "/srv/repos/team/web.git",
      "file:///srv/repos/web",
      "file:///srv/repos/with%20space",
      "/home/ci/checkouts/web"
    ])
      expect(GitUrl.check(url, allowed)).toBeUndefined()
    expect(GitUrl.check("/anything/at/all", ["/"])).toBeUndefined()
  })

  it("refuses a local path that is outside, or could lead outside, every allowed directory", () => {
    const allowed = ["/srv/repos"]
    for (const url of [
      "/srv/repos-old/web",
      "/srv",
      "/srv/repos/../secrets",
      "/srv/repos/./web",
      "/srv/repos//web",
      "file:///srv/repos/%2e%2e/secrets",
      "file:///srv/repos/web%00",
      "file:///srv/repos/%zz",
      "file://localhost/srv/repos/web",
      "srv/repos/web"
    ])
      expect(GitUrl.check(url, allowed)).toBe(orLocal)
  })

  it("accepts nothing that git could read as anything but a remote of the named forms", () => {
    const prefixes = fc.constantFrom(
      "",
      "https://",
      "http://",
      "ssh://",
      "git@",
      "file://",
      "/",
      "-",
      "ext::"
    )
    fc.assert(
      fc.property(prefixes, fc.string({ unit: "binary-ascii" }), (prefix, rest) => {
        const url = prefix + rest
        if (GitUrl.check(url) !== undefined) return
        expect(url).toMatch(/^(?:https?:\/\/|ssh:\/\/|[A-Za-z0-9._~][A-Za-z0-9._~-]*@[A-Za-z0-9])/)
        expect(url).not.toMatch(/[\s\p{Cc}]/u)
      }),
      { numRuns: 2000 }
    )
  })
})

describe("GitUrl.checkRef", () => {
  it.each([
    "main",
    "feature/new-thing",
    "refs/heads/main",
    "refs/tags/v1.2.3",
    "v1.2.3",
    "HEAD",
    "a".repeat(40)
  ])("accepts %s", (ref) => expect(GitUrl.checkRef(ref)).toBeUndefined())

  it.each([
    "--upload-pack=touch /tmp/pwned",
    "-u",
    "+main:refs/heads/x",
    "main:refs/heads/x",
    "HEAD~1",
    "main^",
    "release/*",
    "a b",
    "main\n--upload-pack=id",
    "",
    "a".repeat(256)
  ])("refuses %j", (ref) => expect(GitUrl.checkRef(ref)).toMatch(/^expected a branch, tag or commit/))
})
