// Stands in for '@tensorflow/tfjs-core/dist/ops/ops_for_converter' (build.mjs aliases it here):
// the ops the converter's executors may call for the graph ops listed in graph_ops.json.
// Every other op of TF.js is left out of the bundle; pack.py refuses a model whose
// model.json uses an op that graph_ops.json does not list, naming it.
export {cast} from '@tensorflow/tfjs-core/dist/ops/cast';
export {clone} from '@tensorflow/tfjs-core/dist/ops/clone';
export {concat} from '@tensorflow/tfjs-core/dist/ops/concat';
export {equal} from '@tensorflow/tfjs-core/dist/ops/equal';
export {expandDims} from '@tensorflow/tfjs-core/dist/ops/expand_dims';
export {gather} from '@tensorflow/tfjs-core/dist/ops/gather';
export {lessEqual} from '@tensorflow/tfjs-core/dist/ops/less_equal';
export {matMul} from '@tensorflow/tfjs-core/dist/ops/mat_mul';
export {mul} from '@tensorflow/tfjs-core/dist/ops/mul';
export {notEqual} from '@tensorflow/tfjs-core/dist/ops/not_equal';
export {scalar} from '@tensorflow/tfjs-core/dist/ops/scalar';
export {sigmoid} from '@tensorflow/tfjs-core/dist/ops/sigmoid';
export {softmax} from '@tensorflow/tfjs-core/dist/ops/softmax';
export {stridedSlice} from '@tensorflow/tfjs-core/dist/ops/strided_slice';
export {sub} from '@tensorflow/tfjs-core/dist/ops/sub';
export {tensor1d} from '@tensorflow/tfjs-core/dist/ops/tensor1d';
export {where} from '@tensorflow/tfjs-core/dist/ops/where';
import {matMul} from '@tensorflow/tfjs-core/dist/ops/fused/mat_mul';

export const fused = {matMul};
