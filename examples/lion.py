"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), in a dozen lines:
the sign of an interpolation of the gradient and its running mean is the step.

    rnnopt evaluate --optimizer examples/lion.py:Lion --tier quick --out results/lion
"""

import torch


class Lion(torch.optim.Optimizer):
    """Lion (EvoLved Sign Momentum), found by a program search at Google (Chen et al. 2023). Each
    step moves every weight by exactly the learning rate, in the direction of the sign of an
    interpolation between the gradient and a running mean of gradients; the running mean
    itself is updated with a second, slower coefficient. One buffer per weight, like
    momentum, and a step whose size does not depend on the gradient's scale, like Adam's
    first step."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                # p ← p − lr · sign(β1 m + (1 − β1) g);  m ← β2 m + (1 − β2) g
                p.add_(torch.sign(m.lerp(p.grad, 1 - beta1)), alpha=-group["lr"])
                m.lerp_(p.grad, 1 - beta2)
        return loss
