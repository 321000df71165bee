"""Header access shared by the test client's Response and the origin's
Request: `headers` is a list of (name, value) pairs as received."""


class HeaderAccess:
    headers = ()

    def header(self, name, default=None):
        """The value of header `name` (several are joined with ", ")."""
        vals = self.header_all(name)
        return ", ".join(vals) if vals else default

    def header_all(self, name):
        # a bytes name would silently match nothing and hide a test's mistake
        assert isinstance(name, str), "header names are str, got %r" % (name,)
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has(self, name):
        return bool(self.header_all(name))
