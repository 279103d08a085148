"""An independent numpy re-derivation of one Fed-CMP federation, written from SPEC section 2 only
(plain SVD of the concatenated operands, explicit loops), to check harness.fedcmp against."""
import numpy as np


def np_ties(tensors, density, weights):
    trimmed = []
    for t in tensors:
        k = int(round(density * t.size))
        flat = t.reshape(-1)
        keep = np.zeros(flat.size, bool)
        keep[np.argsort(-np.abs(flat), kind="stable")[:k]] = True
        trimmed.append(np.where(keep, flat, 0.0).reshape(t.shape))
    sign = np.sign(sum(w * t for w, t in zip(weights, trimmed)))
    num, den = np.zeros_like(sign), np.zeros_like(sign)
    for w, t in zip(weights, trimmed):
        agree = (np.sign(t) == sign) & (t != 0)
        num += np.where(agree, w * t, 0.0)
        den += np.where(agree, w, 0.0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


class NumpyFedCMP:
    """States are dicts name -> np.ndarray; keys 'a.weight' [o, i], 'a.bias' [o] per layer."""

    def __init__(self, lam=1.0, rwf="full", opm=True, operand="weights", bias_as_column=True,
                 coef_merge="mean", ties_density=0.2, beta_min=0.5, beta_max=0.9, gamma=2.0, tol=1e-6,
                 opm_align="subspace", opm_gap=0.1, opm_delta="basis"):
        self.__dict__.update(locals())
        self.prev = {}
        self.last = {}                                  # the previous round's output per matrix

    def weights(self, g, clients, n, e):
        m = np.array([np.sqrt(sum(((c[k] - g[k]) ** 2).sum() for k in g)) for c in clients])
        q = np.exp(-self.lam * np.array(e))
        raw = {"full": m * q, "mag": m, "qua": q, "none": np.array(n, float)}[self.rwf]
        return raw / raw.sum()

    def operand_of(self, state, g, key):
        x = state[key] - (g[key] if self.operand == "updates" else 0)
        return x

    def fuse_matrix(self, name, xs, w):
        m = np.concatenate(xs, axis=1)
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        s = np.where(s > self.tol * s.max(), s, 0.0)
        sinv = np.where(s > 0, 1 / np.where(s > 0, s, 1), 0)
        vs = [x.T @ u * sinv for x in xs]               # X_k^T U Sigma^-1
        if self.coef_merge == "mean":
            v = sum(wk * vk for wk, vk in zip(w, vs))
        else:
            v = np_ties(vs, self.ties_density, w)
        if self.opm and name in self.prev:
            fusion = u @ np.diag(s) @ v.T
            delta = None
            if self.opm_delta == "change":             # ||X~ - X_prev||_F / ||X_prev||_F
                delta = np.linalg.norm(fusion - self.last[name]) / np.linalg.norm(self.last[name])
            u, s, v = self.momentum(name, u, s, v, delta)
        if self.opm:
            self.prev[name] = (u, s)
        self.last[name] = u @ np.diag(s) @ v.T
        return self.last[name]

    def groups(self, s, sp):
        """Lists of indices; a cut between j and j+1 where both spectra have a relative gap >= opm_gap."""
        if self.opm_align == "sign":
            return [[j] for j in range(len(s))]

        def rho(x, j):
            return (x[j] - x[j + 1]) / x[j] if x[j] > 0 else 0.0
        out, current = [], [0]
        for j in range(len(s) - 1):
            if min(rho(s, j), rho(sp, j)) >= self.opm_gap:
                out.append(current)
                current = []
            current.append(j + 1)
        return out + [current]

    def momentum(self, name, u, s, v, delta=None):
        """SPEC section 2's OPM steps 1-5, group by group, general path only (no fast path); ``delta``
        given (opm_delta=change) replaces the basis shift."""
        up, sp = self.prev[name]
        u, v, r = u.copy(), v.copy(), len(s)
        groups = self.groups(s, sp)
        shat = np.zeros((r, r))
        for g in groups:
            if len(g) == 1:
                j = g[0]
                if up[:, j] @ u[:, j] < 0:
                    u[:, j] *= -1
                    v[:, j] *= -1
                shat[j, j] = s[j]
            else:
                p, _, qt = np.linalg.svd(u[:, g].T @ up[:, g])
                rot = p @ qt
                u[:, g], v[:, g] = u[:, g] @ rot, v[:, g] @ rot
                shat[np.ix_(g, g)] = rot.T @ np.diag(s[g]) @ rot
        alive = (sp > 0) & (s > 0)
        cos = np.array([up[:, j] @ u[:, j] for j in range(r)])
        if delta is None:
            delta = (1 - cos[alive]).mean() if alive.any() else 0.0
        beta = min(max(self.beta_min + self.gamma * delta, self.beta_min), self.beta_max)
        p, _, qt = np.linalg.svd(beta * up + (1 - beta) * u, full_matrices=False)
        u_new, big_s = p @ qt, beta * np.diag(sp) + (1 - beta) * shat
        s_new = np.zeros(r)
        for g in groups:
            evals, q = np.linalg.eigh(big_s[np.ix_(g, g)])
            order = np.argsort(-evals, kind="stable")
            s_new[g], q = np.maximum(evals[order], 0), q[:, order]
            u_new[:, g], v[:, g] = u_new[:, g] @ q, v[:, g] @ q
        return u_new, s_new, v

    def aggregate(self, g, clients, n, e):
        w = self.weights(g, clients, n, e)
        out = {}
        layers = sorted({k.rsplit(".", 1)[0] for k in g})
        for layer in layers:
            wk, bk = f"{layer}.weight", f"{layer}.bias"
            if self.bias_as_column:
                def op(c):
                    return np.concatenate([self.operand_of(c, g, wk), self.operand_of(c, g, bk)[:, None]], 1)
                fused = self.fuse_matrix(layer, [op(c) for c in clients], w)
                fw, fb = fused[:, :-1], fused[:, -1]
            else:
                fw = self.fuse_matrix(layer, [self.operand_of(c, g, wk) for c in clients], w)
                fb = sum(wi * self.operand_of(c, g, bk) for wi, c in zip(w, clients))
            base = self.operand == "updates"
            out[wk] = fw + (g[wk] if base else 0)
            out[bk] = fb + (g[bk] if base else 0)
        return out
