//! The units of unfrozen blocks as Candle ops with hand-written backward passes, in NHWC so
//! that the forward reuses the inference kernels and the backward is the products and loops of
//! [`crate::kernels::backward`]. Candle's autograd sees one op per conv (plus the tiny BN fold
//! on the weights), instead of the dozens of strided copies and broadcasts the generic ops make.
//!
//! `pointwise(x (P, C_in), w (C_in, C_out), b (C_out)) = act(x w + b)`,
//! `depthwise(x (B, H, W, C), taps (k*k, C), b (C)) = relu6(depthwise_k(x) + b)`.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use crate::kernels::backward::{depthwise_backward, pointwise_backward, product, relu6_mask, Operand};
use crate::kernels::depthwise::{depthwise, DepthwiseShape};
use crate::kernels::pointwise::PointwiseShape;
use crate::kernels::{relu6_in_place, Window};

/// The contiguous `f32` data of a custom op's CPU tensor argument (`what` names it in errors).
pub(crate) fn data<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{what} must be f32");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// The incoming gradient with ReLU6's mask applied (from the op's output `y`).
fn masked_grad(grad: &Tensor, y: &Tensor, relu6: bool) -> Result<Vec<f32>> {
    let mut g = values(grad)?;
    if relu6 {
        relu6_mask(&mut g, &values(y)?);
    }
    Ok(g)
}

struct Pointwise {
    shape: PointwiseShape,
    relu6: bool,
}

impl CustomOp3 for Pointwise {
    fn name(&self) -> &'static str {
        "pointwise-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let PointwiseShape { pixels, in_channels, out_channels } = self.shape;
        let (x, w, b) = (
            data(s1, l1, "training op: input")?,
            data(s2, l2, "training op: weight")?,
            data(s3, l3, "training op: bias")?,
        );
        let mut y = vec![0f32; pixels * out_channels];
        let lhs = Operand { data: x, rows: pixels, cols: in_channels, transposed: false };
        let rhs = Operand { data: w, rows: in_channels, cols: out_channels, transposed: false };
        product(lhs, rhs, &mut y);
        for row in y.chunks_exact_mut(out_channels) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        if self.relu6 {
            relu6_in_place(&mut y);
        }
        Ok((CpuStorage::F32(y), Shape::from((pixels, out_channels))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = masked_grad(grad, y, self.relu6)?;
        let (dx, dw, db) = pointwise_backward(self.shape, &values(x)?, &values(w)?, &g);
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(dw, w.shape(), device)?),
            Some(Tensor::from_vec(db, b.shape(), device)?),
        ))
    }
}

struct Depthwise {
    batch: usize,
    shape: DepthwiseShape,
}

impl Depthwise {
    fn sizes(&self) -> (usize, usize) {
        let s = self.shape;
        (s.height * s.width * s.channels, s.out_height() * s.out_width() * s.channels)
    }
}

impl CustomOp3 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, taps, b) = (
            data(s1, l1, "training op: input")?,
            data(s2, l2, "training op: taps")?,
            data(s3, l3, "training op: bias")?,
        );
        let (in_len, out_len) = self.sizes();
        let mut y = vec![0f32; self.batch * out_len];
        for (image, out) in x.chunks_exact(in_len).zip(y.chunks_exact_mut(out_len)) {
            depthwise(self.shape, image, taps, b, out);
        }
        let s = self.shape;
        Ok((CpuStorage::F32(y), Shape::from((self.batch, s.out_height(), s.out_width(), s.channels))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        taps: &Tensor,
        b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = masked_grad(grad, y, true)?;
        let (xs, ts) = (values(x)?, values(taps)?);
        let (in_len, out_len) = self.sizes();
        let c = self.shape.channels;
        let (mut dx, mut dtaps, mut db) = (vec![0f32; xs.len()], vec![0f32; ts.len()], vec![0f32; c]);
        for ((image, grad), dx) in xs.chunks_exact(in_len).zip(g.chunks_exact(out_len)).zip(dx.chunks_exact_mut(in_len))
        {
            depthwise_backward(self.shape, image, &ts, grad, dx, &mut dtaps);
            for pixel in grad.chunks_exact(c) {
                db.iter_mut().zip(pixel).for_each(|(acc, g)| *acc += g);
            }
        }
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(dtaps, taps.shape(), device)?),
            Some(Tensor::from_vec(db, b.shape(), device)?),
        ))
    }
}

/// `act(x w + b)` for `x: (P, C_in)`, `w: (C_in, C_out)`, `b: (C_out)`; `act` is ReLU6 or none.
pub fn pointwise(x: &Tensor, w: &Tensor, b: &Tensor, relu6: bool) -> Result<Tensor> {
    let (pixels, in_channels) = x.dims2()?;
    let (w_in, out_channels) = w.dims2()?;
    if w_in != in_channels || b.dims() != [out_channels] {
        candle_core::bail!("pointwise: input {:?}, weight {:?}, bias {:?}", x.dims(), w.dims(), b.dims());
    }
    let op = Pointwise { shape: PointwiseShape { pixels, in_channels, out_channels }, relu6 };
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// `relu6(depthwise(x, taps) + b)` for `x: (B, H, W, C)`, `taps: (k*k, C)`, `b: (C)`, in a
/// supported window ([`Window::is_supported`]).
pub fn depthwise_relu6(x: &Tensor, taps: &Tensor, b: &Tensor, window: Window) -> Result<Tensor> {
    let (batch, height, width, channels) = x.dims4()?;
    if taps.dims() != [window.taps(), channels] || b.dims() != [channels] || !window.is_supported() {
        candle_core::bail!("depthwise: input {:?}, taps {:?}, window {window:?}", x.dims(), taps.dims());
    }
    let op = Depthwise { batch, shape: DepthwiseShape { height, width, channels, window } };
    x.contiguous()?.apply_op3(&taps.contiguous()?, &b.contiguous()?, op)
}
